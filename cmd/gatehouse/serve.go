package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/simulate"
	"gatehouse/store"
)

// appConfig is what serve and demo share.
type appConfig struct {
	Listen   string
	DB       string
	Backends gatehouse.Backends
	Logger   *slog.Logger
}

// app is a running server: database, job runner and HTTP.
type app struct {
	db     *store.DB
	svc    *provision.Service
	server *server.Server
}

func startApp(ctx context.Context, cfg appConfig) (*app, error) {
	db, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	svc, err := provision.New(db, provision.Config{Backends: cfg.Backends, Logger: cfg.Logger})
	if err != nil {
		db.Close()
		return nil, err
	}
	a := &app{db: db, svc: svc, server: server.New(svc)}
	a.server.Addr, a.server.Logger = cfg.Listen, cfg.Logger
	if err := svc.Start(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := a.server.Open(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close stops HTTP first so no new work arrives, then lets running steps
// finish for a while, then closes the database.
func (a *app) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.server.Close(ctx)
	a.svc.Stop(ctx)
	return a.db.Close()
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", envOr(getenv, "GATEHOUSE_LISTEN", ":8080"), "listen address (env GATEHOUSE_LISTEN)")
	dbPath := fs.String("db", envOr(getenv, "GATEHOUSE_DB", "gatehouse.db"), "database: SQLite file path (env GATEHOUSE_DB)")
	simulated := fs.Bool("simulate-backends", false, "provision into in-process simulated Mender, DPS and Vault (for trials)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := newLogger(stderr)
	cfg := appConfig{Listen: *listen, DB: *dbPath, Logger: log}
	if *simulated {
		b, err := simulatedBackends()
		if err != nil {
			log.Error("start simulators", "err", err)
			return 1
		}
		cfg.Backends = b
	}
	a, err := startApp(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	log.Info("gatehouse serving", "url", a.server.URL(), "db", *dbPath, "simulated_backends", *simulated)
	<-ctx.Done()
	log.Info("shutting down")
	if err := a.Close(); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// simulatedBackends returns fresh in-process simulators of every backend.
func simulatedBackends() (gatehouse.Backends, error) {
	pki, err := simulate.NewPKI()
	if err != nil {
		return gatehouse.Backends{}, err
	}
	return gatehouse.Backends{Mender: simulate.NewMender(), DPS: simulate.NewDPS(""), PKI: pki}, nil
}
