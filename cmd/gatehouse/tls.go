package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"gatehouse/server"
)

// loadTLS reads the serving certificate; neither file means plain HTTP.
// One without the other is refused: silently serving plain HTTP when the
// operator meant HTTPS would be the worst outcome.
func loadTLS(certFile, keyFile string) (*server.Certificate, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("--tls-cert and --tls-key (GATEHOUSE_TLS_CERT, GATEHOUSE_TLS_KEY) go together: give both for HTTPS, or neither")
	}
	return server.LoadCertificate(certFile, keyFile)
}

// reloadOnHangup re-reads the certificate on each SIGHUP, the usual signal
// for a renewal hook (certbot --deploy-hook, systemctl reload), until ctx
// ends. Open connections keep going; new handshakes get the new
// certificate. The handler is installed before it returns, so a SIGHUP
// right after start-up cannot kill the server.
func reloadOnHangup(ctx context.Context, cert *server.Certificate, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloadCert(cert, log)
			}
		}
	}()
}

func reloadCert(cert *server.Certificate, log *slog.Logger) {
	if err := cert.Reload(); err != nil {
		log.Error("TLS certificate reload failed; still serving the previous certificate", "err", err)
		return
	}
	leaf := cert.Leaf().Leaf
	log.Info("TLS certificate reloaded", "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter)
}
