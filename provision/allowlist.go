package provision

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/roster"
	"gatehouse/store"
)

// MaxAllowlistRows bounds one import: every row costs a name check in each
// backend, and IoT Hub's S1 tier allows 100 identity lookups a minute.
const MaxAllowlistRows = 1000

// AllowlistCheckBudget bounds the backend name checks of one import. At
// S1's 100 lookups a minute a full file of MaxAllowlistRows takes about ten
// minutes; rows not checked in time are reported, never imported unchecked.
const AllowlistCheckBudget = 12 * time.Minute

// ImportOptions say what an import does with a file that has bad rows.
type ImportOptions struct {
	// SkipInvalid imports the good rows of a file that has bad ones; without
	// it a file with any bad row imports nothing.
	SkipInvalid bool
	// DryRun checks every row and reports what would be imported, changing
	// nothing.
	DryRun bool
}

// ImportResult is what an import did, or would do in a dry run.
type ImportResult struct {
	DryRun bool `json:"dry_run"`
	// Rows is how many gateway rows the file holds.
	Rows int `json:"rows"`
	// Imported are the entries added (in a dry run: that would be).
	Imported []gatehouse.AllowlistEntry `json:"imported"`
	// Unchanged counts rows listed already exactly so: importing a file
	// again is harmless.
	Unchanged int `json:"unchanged"`
	// Errors are the bad rows by line; with SkipInvalid, the rows skipped.
	Errors []roster.RowError `json:"errors"`
}

// InvalidRowsError refuses a file with bad rows; Result lists them. Its
// code is EINVALID.
type InvalidRowsError struct {
	Result *ImportResult
}

func (e *InvalidRowsError) Error() string { return e.Unwrap().Error() }

// Unwrap gives the refusal's code and message to gatehouse.ErrorCode.
func (e *InvalidRowsError) Unwrap() error {
	r := e.Result
	return gatehouse.Errorf(gatehouse.EINVALID, "%d of %d rows have errors; nothing was imported", len(r.Errors), r.Rows)
}

// ImportAllowlist lists the gateways of a roster CSV file (mac,name,labels)
// so each is approved under its name when it first enrolls. Every row is
// checked first: the MAC, the name policy, and whether the name is taken in
// gatehouse, on the allowlist or in any backend. A file with a bad row
// imports nothing unless opt.SkipInvalid; the good rows are then added in
// one transaction.
func (s *Service) ImportAllowlist(ctx context.Context, actor string, r io.Reader, opt ImportOptions) (*ImportResult, error) {
	ctx = withActor(ctx, actor)
	res, err := s.importAllowlist(ctx, actor, r, opt)
	if opt.DryRun {
		return res, err
	}
	detail := map[string]any{"skip_invalid": opt.SkipInvalid}
	if res != nil {
		detail["rows"], detail["errors"] = res.Rows, len(res.Errors)
	}
	return res, s.recordRefusal(ctx, ActionAllowlistImport, "allowlist", detail, err)
}

func (s *Service) importAllowlist(ctx context.Context, actor string, r io.Reader, opt ImportOptions) (*ImportResult, error) {
	rows, bad, err := roster.Parse(r, roster.Options{MaxRows: MaxAllowlistRows})
	if err != nil {
		return nil, err
	}
	res := &ImportResult{DryRun: opt.DryRun, Rows: len(rows) + len(bad), Errors: bad}
	var fresh []roster.Row
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		fresh, err = res.sortOut(ctx, tx, rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	fresh = res.refuse(s.checkListedNames(ctx, fresh))
	if len(res.Errors) > 0 && !opt.SkipInvalid {
		return res, &InvalidRowsError{Result: res}
	}
	if opt.DryRun {
		res.Imported = listedEntries(fresh, actor)
		return res, nil
	}
	return res, s.addListed(ctx, res, fresh, actor, opt)
}

// addListed adds the checked rows in one transaction, checking again what
// gatehouse knows: devices and other imports may have taken a MAC or name
// while the backends answered.
func (s *Service) addListed(ctx context.Context, res *ImportResult, rows []roster.Row, actor string, opt ImportOptions) error {
	var out ImportResult
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		out = ImportResult{Rows: res.Rows, Unchanged: res.Unchanged, Errors: slices.Clone(res.Errors)}
		fresh, err := out.sortOut(ctx, tx, rows)
		if err != nil {
			return err
		}
		if len(out.Errors) > len(res.Errors) && !opt.SkipInvalid {
			return &InvalidRowsError{Result: &out}
		}
		out.Imported = listedEntries(fresh, actor)
		for i := range out.Imported {
			if err := tx.AddAllowlistEntry(ctx, &out.Imported[i]); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, ActionAllowlistImport, "allowlist", nil, importDetail(&out, opt))
	})
	sortRowErrors(out.Errors)
	*res = out
	if err == nil {
		s.log.InfoContext(ctx, "allowlist imported", "entries", len(out.Imported), "skipped", len(out.Errors), "by", actor)
	}
	return err
}

// importDetail is what the audit log keeps of an import: counts, and the
// names listed while they fit.
func importDetail(r *ImportResult, opt ImportOptions) map[string]any {
	detail := map[string]any{"rows": r.Rows, "imported": len(r.Imported), "unchanged": r.Unchanged,
		"errors": len(r.Errors), "skip_invalid": opt.SkipInvalid}
	if len(r.Imported) <= 100 {
		listed := make([]string, len(r.Imported))
		for i, e := range r.Imported {
			listed[i] = e.MAC + " " + e.Name
		}
		detail["entries"] = listed
	}
	return detail
}

func listedEntries(rows []roster.Row, actor string) []gatehouse.AllowlistEntry {
	out := make([]gatehouse.AllowlistEntry, len(rows))
	for i, r := range rows {
		out[i] = gatehouse.AllowlistEntry{MAC: r.MAC, Name: r.Name, Labels: r.Labels, ImportedBy: actor}
	}
	return out
}

// sortOut returns the rows gatehouse itself has nothing against, counts the
// ones listed already exactly so, and adds an error for each of the others.
func (res *ImportResult) sortOut(ctx context.Context, tx *store.Tx, rows []roster.Row) ([]roster.Row, error) {
	var fresh []roster.Row
	for _, row := range rows {
		msg, err := listable(ctx, tx, row)
		switch {
		case err != nil:
			return nil, err
		case msg == "listed":
			res.Unchanged++
		case msg != "":
			res.Errors = append(res.Errors, roster.RowError{Line: row.Line, Msg: msg})
		default:
			fresh = append(fresh, row)
		}
	}
	return fresh, nil
}

// listable says what gatehouse has against listing row: "" nothing,
// "listed" when it is on the list already exactly so, else the problem.
func listable(ctx context.Context, tx *store.Tx, row roster.Row) (string, error) {
	e, err := tx.AllowlistEntry(ctx, row.MAC)
	if err == nil {
		if e.Name == row.Name && maps.Equal(e.Labels, row.Labels) {
			return "listed", nil
		}
		return fmt.Sprintf("MAC %s is already on the allowlist as %q (imported by %s); remove it first with "+
			"'gatehouse allowlist remove %s'", row.MAC, e.Name, e.ImportedBy, row.MAC), nil
	}
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return "", err
	}
	id, err := tx.DeviceWithMAC(ctx, row.MAC, "")
	if err != nil || id != "" {
		return fmt.Sprintf("MAC %s has already enrolled as device %s; approve or re-key that device directly", row.MAC, id), err
	}
	return nameListable(ctx, tx, row.Name)
}

func nameListable(ctx context.Context, tx *store.Tx, name string) (string, error) {
	d, err := tx.DeviceByName(ctx, name)
	if err == nil {
		return nameTakenBy(name, d).Message, nil
	}
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return "", err
	}
	e, err := tx.AllowlistByName(ctx, name)
	if err == nil {
		return fmt.Sprintf("name %q is already on the allowlist for MAC %s", name, e.MAC), nil
	}
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return "", err
	}
	return "", nil
}

// refuse adds the backends' problems to the errors and returns the rows
// that have none.
func (res *ImportResult) refuse(rows []roster.Row, problems []roster.RowError) []roster.Row {
	res.Errors = append(res.Errors, problems...)
	sortRowErrors(res.Errors)
	return rows
}

func sortRowErrors(errs []roster.RowError) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
}

// checkListedNames asks every backend whether it holds each row's name and
// returns the rows free everywhere, and a problem for each of the others.
// Each backend is asked one name at a time, through its client's own rate
// limit, so an import paces itself to the backend quotas instead of taking
// them all at once from the provisioning steps that share them.
func (s *Service) checkListedNames(ctx context.Context, rows []roster.Row) ([]roster.Row, []roster.RowError) {
	ctx, cancel := context.WithTimeout(ctx, AllowlistCheckBudget)
	defer cancel()
	found := make([][]string, len(rows))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range s.cfg.Backends {
		wg.Go(func() {
			for i, row := range rows {
				if msg := s.askListedName(ctx, b, row.Name); msg != "" {
					mu.Lock()
					found[i] = append(found[i], msg)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	var free []roster.Row
	var problems []roster.RowError
	for i, row := range rows {
		if len(found[i]) == 0 {
			free = append(free, row)
			continue
		}
		sort.Strings(found[i])
		problems = append(problems, roster.RowError{Line: row.Line,
			Msg: fmt.Sprintf("name %q %s", row.Name, strings.Join(found[i], "; "))})
	}
	return free, problems
}

// askListedName is one backend's problem with a name, or "" if it has none.
func (s *Service) askListedName(ctx context.Context, b gatehouse.Backend, name string) string {
	if ctx.Err() != nil {
		return fmt.Sprintf("could not be checked in %s: the import's %v for name checks ran out; import fewer rows at once",
			b.Name(), AllowlistCheckBudget)
	}
	cctx, cancel := context.WithTimeout(ctx, nameCheckTimeout)
	defer cancel()
	where, err := b.NameTaken(cctx, name)
	switch {
	case err != nil:
		s.log.WarnContext(ctx, "allowlist name check failed", "backend", b.Name(), "name", name, "err", err)
		return fmt.Sprintf("could not be checked in %s (%v); try again", b.Name(), err)
	case len(where) > 0:
		return "is already taken in " + strings.Join(where, ", ")
	}
	return ""
}

// AllowlistPage is a page of the allowlist and how many entries it has.
type AllowlistPage struct {
	Entries []gatehouse.AllowlistEntry `json:"entries"`
	Total   int                        `json:"total"`
}

// Allowlist returns entries in MAC order; limit 0 means 500, at most 5000.
func (s *Service) Allowlist(ctx context.Context, offset, limit int) (*AllowlistPage, error) {
	if limit == 0 {
		limit = 500
	}
	if limit < 0 || limit > 5000 || offset < 0 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "limit must be 1-5000 and offset not negative")
	}
	page := &AllowlistPage{Entries: []gatehouse.AllowlistEntry{}}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		entries, total, err := tx.Allowlist(ctx, offset, limit)
		if entries != nil {
			page.Entries = entries
		}
		page.Total = total
		return err
	})
	return page, err
}

// RemoveAllowlistEntry takes a MAC off the allowlist and frees its name. A
// device approved from the entry keeps its name and key.
func (s *Service) RemoveAllowlistEntry(ctx context.Context, actor, mac string) error {
	ctx = withActor(ctx, actor)
	norm, err := gatehouse.NormalizeMAC(mac)
	if err == nil {
		err = s.db.InTx(ctx, func(tx *store.Tx) error {
			e, err := tx.AllowlistEntry(ctx, norm)
			if err != nil {
				return err
			}
			if err := tx.DeleteAllowlistEntry(ctx, norm); err != nil {
				return err
			}
			return s.audit(ctx, tx, ActionAllowlistRemove, norm, nil,
				map[string]any{"name": e.Name, "device": e.DeviceID, "used": e.Used()})
		})
	}
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		err = gatehouse.Errorf(gatehouse.ENOTFOUND, "MAC %s is not on the allowlist", norm)
	}
	return s.recordRefusal(ctx, ActionAllowlistRemove, clip(mac, maxAuditText), nil, err)
}

// allowlistNameFree refuses to approve d under a name the allowlist keeps
// for another gateway: the entry's own device may take it.
func allowlistNameFree(ctx context.Context, tx *store.Tx, d *gatehouse.Device, name string) error {
	e, err := tx.AllowlistByName(ctx, name)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	if e.DeviceID == d.ID {
		return nil
	}
	return gatehouse.Errorf(gatehouse.ECONFLICT, "name %q is kept on the allowlist for MAC %s; choose another name, "+
		"or remove that entry first ('gatehouse allowlist remove %s')", name, e.MAC, e.MAC)
}
