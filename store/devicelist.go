package store

import (
	"context"
	"strconv"
	"strings"

	"gatehouse"
)

// DeviceSort orders a device listing: a column, ascending, or descending
// with a leading '-'. The zero value is newest first.
type DeviceSort string

// Device orders. Unnamed gateways, and those no hub holds yet, come last
// whichever way their column is sorted: they are what an operator sorting
// by name or hub is looking past. Ties go to the newest, then to the id,
// so pages are stable.
const (
	SortNewest       DeviceSort = ""
	SortName         DeviceSort = "name"
	SortNameDesc     DeviceSort = "-name"
	SortState        DeviceSort = "state" // in the order of gatehouse.States
	SortStateDesc    DeviceSort = "-state"
	SortLastSeen     DeviceSort = "last_seen"
	SortLastSeenDesc DeviceSort = "-last_seen"
	SortHub          DeviceSort = "hub"
	SortHubDesc      DeviceSort = "-hub"
)

// DeviceSorts lists every order Devices knows.
var DeviceSorts = []DeviceSort{
	SortNewest, SortName, SortNameDesc, SortState, SortStateDesc,
	SortLastSeen, SortLastSeenDesc, SortHub, SortHubDesc,
}

// Valid reports whether s is one of DeviceSorts.
func (s DeviceSort) Valid() bool {
	for _, v := range DeviceSorts {
		if s == v {
			return true
		}
	}
	return false
}

// sortKey is one expression of an ORDER BY.
type sortKey struct {
	expr string
	desc bool
}

var (
	newest  = sortKey{"d.first_seen", true}
	byID    = sortKey{"d.id", false}
	unnamed = sortKey{"CASE WHEN COALESCE(d.name, '') = '' THEN 1 ELSE 0 END", false}
	named   = "COALESCE(d.name, '')"
)

// stateRank orders states as gatehouse.States does, the happy path first,
// rather than alphabetically.
var stateRank = func() string {
	var b strings.Builder
	b.WriteString("CASE d.state")
	for i, s := range gatehouse.States {
		b.WriteString(" WHEN '" + string(s) + "' THEN " + strconv.Itoa(i)) // constants, never input
	}
	b.WriteString(" ELSE " + strconv.Itoa(len(gatehouse.States)) + " END")
	return b.String()
}()

// hubExpr is the IoT Hub a device's follow-up step recorded, empty if none.
// Steps keep their output as JSON text, which the dialects read apart.
func (tx *Tx) hubExpr() string {
	field := `json_extract(s.output, '$.` + gatehouse.OutAssignedHub + `')`
	if tx.pg {
		field = `(s.output::jsonb ->> '` + gatehouse.OutAssignedHub + `')`
	}
	return `COALESCE((SELECT ` + field + ` FROM provisioning_steps s
		WHERE s.device_id = d.id AND s.step = '` + string(gatehouse.StepHub) + `'), '')`
}

// sortKeys is the ORDER BY of s, ending in the id so every device has a
// place of its own (which walking by cursor needs).
func (tx *Tx) sortKeys(s DeviceSort) ([]sortKey, error) {
	desc := strings.HasPrefix(string(s), "-")
	switch strings.TrimPrefix(string(s), "-") {
	case string(SortNewest):
		if !desc {
			return []sortKey{newest, byID}, nil
		}
	case string(SortName):
		return []sortKey{unnamed, {named, desc}, byID}, nil
	case string(SortState):
		return []sortKey{{stateRank, desc}, newest, byID}, nil
	case string(SortLastSeen):
		return []sortKey{{"d.last_seen", desc}, byID}, nil
	case string(SortHub):
		hub := tx.hubExpr()
		return []sortKey{{"CASE WHEN " + hub + " = '' THEN 1 ELSE 0 END", false}, {hub, desc}, newest, byID}, nil
	}
	return nil, gatehouse.Errorf(gatehouse.EINVALID, "unknown sort %q", s)
}

func orderBy(keys []sortKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.expr
		if k.desc {
			parts[i] += " DESC"
		}
	}
	return " ORDER BY " + strings.Join(parts, ", ")
}

// DeviceCursor is where a walk through a listing stopped: the sort keys of
// the last device it returned.
type DeviceCursor struct{ keys []any }

// DevicesAfter returns up to f.Limit devices that come after cur in f's
// order (from the first if cur is nil), and the cursor to go on from; nil
// once there are no more. f.Offset is not used. Unlike an offset, a cursor
// neither skips nor repeats a device when others are added or removed
// between two calls, so a long walk can take one short transaction per
// batch.
func (tx *Tx) DevicesAfter(ctx context.Context, f DeviceFilter, cur *DeviceCursor) ([]*gatehouse.Device, *DeviceCursor, error) {
	keys, err := tx.sortKeys(f.Sort)
	if err != nil {
		return nil, nil, err
	}
	where, args := deviceWhere(f)
	if cur != nil {
		cond, cargs := after(keys, cur.keys)
		where, args = addCond(where, cond), append(args, cargs...)
	}
	exprs := make([]string, len(keys))
	for i, k := range keys {
		exprs[i] = k.expr
	}
	rows, err := tx.q.QueryContext(ctx, `SELECT `+deviceColumns+", "+strings.Join(exprs, ", ")+deviceFrom+where+orderBy(keys)+` LIMIT ?`,
		append(args, noLimit(f.Limit))...)
	if err != nil {
		return nil, nil, translate(err, "devices")
	}
	defer rows.Close()
	var out []*gatehouse.Device
	var last []any
	for rows.Next() {
		vals := make([]any, len(keys))
		ptrs := make([]any, len(keys))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		d, err := scanDevice(rows, ptrs...)
		if err != nil {
			return nil, nil, translate(err, "devices")
		}
		out, last = append(out, d), vals
	}
	if err := rows.Err(); err != nil {
		return nil, nil, translate(err, "devices")
	}
	if last == nil || (f.Limit > 0 && len(out) < f.Limit) {
		return out, nil, nil
	}
	return out, &DeviceCursor{keys: last}, nil
}

// after is the condition for rows past vals in keys' order: greater in the
// first key that differs (smaller for a descending one).
func after(keys []sortKey, vals []any) (string, []any) {
	var ors []string
	var args []any
	for i, k := range keys {
		var ands []string
		for j := range i {
			ands, args = append(ands, keys[j].expr+" = ?"), append(args, vals[j])
		}
		op := " > ?"
		if k.desc {
			op = " < ?"
		}
		ands, args = append(ands, k.expr+op), append(args, vals[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

func addCond(where, cond string) string {
	if where == "" {
		return " WHERE " + cond
	}
	return where + " AND " + cond
}

// DeviceCounts counts the devices that match f in each state, whatever
// f.State says: what each choice of state would list. States none is in
// are left out.
func (tx *Tx) DeviceCounts(ctx context.Context, f DeviceFilter) (map[gatehouse.State]int, error) {
	f.State = ""
	where, args := deviceWhere(f)
	rows, err := tx.q.QueryContext(ctx, `SELECT d.state, COUNT(*) FROM devices d`+where+` GROUP BY d.state`, args...)
	if err != nil {
		return nil, translate(err, "devices")
	}
	defer rows.Close()
	out := map[gatehouse.State]int{}
	for rows.Next() {
		var s gatehouse.State
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, translate(err, "devices")
		}
		out[s] = n
	}
	return out, translate(rows.Err(), "devices")
}
