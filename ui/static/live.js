// Live wraps the server's event stream. EventSource reconnects by itself
// after a network error; after an HTTP error (say the server restarted and
// answered 503) it gives up, so Live retries then, with a growing delay.

export class Live {
  constructor(url, { changed, status, reconnected, refused }) {
    this.url = url;
    this.changed = changed;
    this.status = status;
    this.reconnected = reconnected;
    this.refused = refused; // the server answered with an error, e.g. 401
    this.delay = 1000;
    this.closed = false;
    this.open();
  }

  open() {
    this.status('connecting');
    const es = new EventSource(this.url);
    this.es = es;
    es.addEventListener('open', () => {
      this.status('live');
      this.delay = 1000;
      // Events sent before the stream was subscribed are lost: while we
      // were away, or, on the first open, between the page's first load and
      // now. Catch up once.
      this.reconnected();
    });
    es.addEventListener('devices', (e) => {
      let ids = null;
      try {
        const data = JSON.parse(e.data);
        // "all" means too much changed to list; the page refreshes everything.
        ids = data.all ? null : data.ids || null;
      } catch {
        // A malformed event still means something changed.
      }
      this.changed(ids);
    });
    es.addEventListener('error', () => {
      this.status('reconnecting');
      if (es.readyState === EventSource.CLOSED && !this.closed) {
        this.refused();
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.open(), this.delay);
        this.delay = Math.min(this.delay * 2, 30000);
      }
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.es?.close();
  }
}
