package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"gatehouse"
	"gatehouse/store"
	"gatehouse/webhook"
)

// change is one state change of a device, with what else changes with it.
type change struct {
	to     gatehouse.State
	reason string
	actor  string
	update store.DeviceUpdate // further fields to set in the same write
}

// setState is the one way a device's state changes: the row, and a webhook
// delivery enqueued in the same transaction, so a change and its
// notification are committed together or not at all.
func (s *Service) setState(ctx context.Context, tx *store.Tx, d *gatehouse.Device, c change) error {
	if d.State == gatehouse.StateDecommissioned && c.to != d.State {
		return nil // a step that was running when it was decommissioned finishes without reviving it
	}
	u := c.update
	u.State, u.Reason = &c.to, &c.reason
	if err := tx.UpdateDevice(ctx, d.ID, u); err != nil {
		return err
	}
	if d.State == c.to || s.cfg.Webhook == nil {
		return nil
	}
	name := d.Name
	if u.Name != nil {
		name = *u.Name
	}
	e := webhook.Event{ID: newEventID(), Type: "device.state_changed", At: tx.Now(), DeviceID: d.ID, Name: name,
		State: string(c.to), PreviousState: string(d.State), Reason: c.reason, Actor: c.actor}
	if _, err := tx.Enqueue(ctx, webhookArgs{Event: e}, nil); err != nil {
		return fmt.Errorf("provision: enqueue webhook: %w", err)
	}
	return nil
}

// webhookArgs is one durable delivery of one event.
type webhookArgs struct {
	Event webhook.Event `json:"event"`
}

// Kind is stored with every job; never rename it.
func (webhookArgs) Kind() string { return "webhook_delivery" }

// InsertOpts gives deliveries their own retry budget: about a day with the
// retry policy's five-minute cap, after which the receiver has had its chance.
func (webhookArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueWebhooks, MaxAttempts: 300}
}

type webhookWorker struct {
	river.WorkerDefaults[webhookArgs]
	svc *Service
}

func (w *webhookWorker) Work(ctx context.Context, job *river.Job[webhookArgs]) error {
	err := w.svc.cfg.Webhook.Send(ctx, job.Args.Event)
	if err != nil {
		w.svc.log.Warn("webhook delivery failed", "event", job.Args.Event.ID, "attempt", job.Attempt, "err", err)
	}
	return err
}

// Timeout bounds one delivery; the sender has its own, shorter one.
func (w *webhookWorker) Timeout(*river.Job[webhookArgs]) time.Duration { return time.Minute }

func newEventID() string { return newID() + newID() }
