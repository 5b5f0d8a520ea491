package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gatehouse/store"
)

// TestBackupWhileWriting copies the database while another goroutine keeps
// adding devices: the copy opens as a current database holding a prefix of
// the writes (every device it holds is whole), and a second backup to the
// same file is refused.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustCreate(t, db, newDevice("dev-00"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			d := newDevice(fmt.Sprintf("dev-%04d", i))
			d.Fingerprint = fmt.Sprintf("fp-%d", i)
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.CreateDevice(ctx, d, newKey(d)) }); err != nil {
				t.Errorf("write during backup: %v", err)
				return
			}
		}
	})
	out := filepath.Join(dir, "backup.db")
	err = db.Backup(ctx, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".backup.db.partial")); !os.IsNotExist(err) {
		t.Errorf("the partial file was left behind: %v", err)
	}
	copyDB, err := store.Open(ctx, out)
	if err != nil {
		t.Fatalf("the backup does not open as a gatehouse database: %v", err)
	}
	defer copyDB.Close()
	var n int
	err = copyDB.InTx(ctx, func(tx *store.Tx) error {
		ds, total, err := tx.Devices(ctx, store.DeviceFilter{Limit: 1000})
		for _, d := range ds {
			if _, err := tx.FindKey(ctx, d.Fingerprint); err != nil {
				return fmt.Errorf("device %s in the backup without its key: %w", d.ID, err)
			}
		}
		n = total
		return err
	})
	if err != nil || n < 1 {
		t.Fatalf("backup holds %d devices, %v", n, err)
	}
	if err := db.Backup(ctx, out); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second backup to the same file: %v, want a refusal", err)
	}
}
