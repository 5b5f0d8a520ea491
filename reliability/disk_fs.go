package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// smallDisk is where the disk scenario keeps the server's database: a
// place that can be made full and given space again while the server runs.
type smallDisk interface {
	// Describe names the mechanism for the scenario's notes.
	Describe() string
	// Attach is called once the server runs, with its process id.
	Attach(pid int) error
	// Squeeze leaves about headroom bytes for the database to grow into.
	Squeeze(headroom int64) error
	// Fill leaves nothing at all.
	Fill() error
	// Free gives the space back.
	Free() error
	Close() error
}

// openSmallDisk mounts a tmpfs of sizeMiB under dir, the real thing: the
// kernel answers ENOSPC, SQLite SQLITE_FULL. Where mounting is not
// allowed (not root, a container without CAP_SYS_ADMIN) it falls back on
// a file size limit set on the server process (RLIMIT_FSIZE with
// prlimit): the kernel then refuses a write past the limit with EFBIG,
// which SQLite reports as SQLITE_IOERR_WRITE. GATEHOUSE_RELIABILITY_DISK=fsize
// picks the fallback where mounting works, to try it.
func openSmallDisk(dir string, sizeMiB int) (smallDisk, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	var why string
	if os.Getenv("GATEHOUSE_RELIABILITY_DISK") == "fsize" {
		why = "GATEHOUSE_RELIABILITY_DISK=fsize"
	} else {
		err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", sizeMiB))
		if err == nil {
			return &tmpfsDisk{dir: dir, size: sizeMiB}, "", nil
		}
		why = fmt.Sprintf("cannot mount a tmpfs: %v", err)
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		return nil, why, fmt.Errorf("%s, and no prlimit for the file size limit: %w", why, err)
	}
	return &fsizeDisk{dir: dir}, why, nil
}

// tmpfsDisk is a mounted tmpfs with a ballast file that takes the space.
type tmpfsDisk struct {
	dir  string
	size int
}

func (d *tmpfsDisk) Describe() string     { return fmt.Sprintf("tmpfs %dMiB", d.size) }
func (d *tmpfsDisk) Attach(int) error     { return nil }
func (d *tmpfsDisk) ballast(n int) string { return filepath.Join(d.dir, "ballast-"+strconv.Itoa(n)) }

func (d *tmpfsDisk) free() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// Squeeze writes a ballast file of all but headroom of the free space.
func (d *tmpfsDisk) Squeeze(headroom int64) error {
	avail, err := d.free()
	if err != nil {
		return err
	}
	return writeBallast(d.ballast(0), max(avail-headroom, 0))
}

// Fill writes a second ballast file until the file system is full, so the
// crumbs a refused write left do not pass for space.
func (d *tmpfsDisk) Fill() error { return writeBallast(d.ballast(1), -1) }

func (d *tmpfsDisk) Free() error {
	return errors.Join(rmIfThere(d.ballast(0)), rmIfThere(d.ballast(1)))
}

func (d *tmpfsDisk) Close() error {
	d.Free()
	return syscall.Unmount(d.dir, syscall.MNT_DETACH)
}

func rmIfThere(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// writeBallast writes n bytes to path, or until ENOSPC when n < 0.
func writeBallast(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for n != 0 {
		c := chunk
		if n > 0 && int64(len(c)) > n {
			c = c[:n]
		}
		w, err := f.Write(c)
		if n > 0 {
			n -= int64(w)
		}
		if errors.Is(err, syscall.ENOSPC) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fsizeDisk limits how large the server process may make any file.
type fsizeDisk struct {
	dir string
	pid int
}

func (d *fsizeDisk) Describe() string     { return "RLIMIT_FSIZE on the server process" }
func (d *fsizeDisk) Attach(pid int) error { d.pid = pid; return nil }
func (d *fsizeDisk) Close() error         { return nil }

// Squeeze caps every file at the largest database file now plus headroom.
// The cap holds for every file the process writes, so its log lines past
// the cap are lost while it lasts.
func (d *fsizeDisk) Squeeze(headroom int64) error {
	var largest int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(filepath.Join(d.dir, "gatehouse.db"+suffix)); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	return d.limit(strconv.FormatInt(largest+headroom, 10))
}

// Fill caps files at the size they have: no file may grow.
func (d *fsizeDisk) Fill() error { return d.Squeeze(0) }

func (d *fsizeDisk) Free() error { return d.limit("unlimited") }

// limit sets the soft limit only, which the process's owner may raise
// again without privileges.
func (d *fsizeDisk) limit(soft string) error {
	out, err := exec.Command("prlimit", "--pid", strconv.Itoa(d.pid), "--fsize="+soft+":unlimited").CombinedOutput()
	if err != nil {
		return fmt.Errorf("prlimit: %w: %s", err, out)
	}
	return nil
}
