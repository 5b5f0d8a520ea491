package provision

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"gatehouse"
	"gatehouse/store"
)

// ActionBulkStart records an operator starting a bulk operation; each of
// its gateways then gets the usual device.approve or device.dismiss entry,
// in the starter's name.
const ActionBulkStart = "bulk.start"

// MaxBulkItems bounds one bulk operation: a day's enrollments of a large
// fleet, and a request body that stays small.
const MaxBulkItems = 10_000

// bulkConcurrency is how many items of one operation are worked at once.
// The backends' quotas are kept by their clients' rate limiters; this only
// keeps several name checks in flight while one waits on a limiter.
const bulkConcurrency = 4

// bulkBatch is how many waiting items are read at a time.
const bulkBatch = 32

// maxBulkProblems is how many refused items an error message names.
const maxBulkProblems = 10

// The bulk wire types live in the root package, shared with the server's
// decoding and the client.
type (
	BulkRequest = gatehouse.BulkRequest
	BulkTarget  = gatehouse.BulkTarget
	BulkPlan    = gatehouse.BulkPlan
	BulkProblem = gatehouse.BulkProblem
)

// PlanBulk checks a bulk request without changing anything: the dry run
// an operator previews names with.
func (s *Service) PlanBulk(ctx context.Context, req BulkRequest) (*BulkPlan, error) {
	targets, err := bulkTargets(req)
	if err != nil {
		return nil, err
	}
	plan := &BulkPlan{Action: req.Action, Items: make([]gatehouse.BulkItem, len(targets)), Problems: []BulkProblem{}}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		return planItems(ctx, tx, req.Action, targets, plan)
	})
	return plan, err
}

// StartBulk checks a bulk request and, if every item is right, stores the
// operation and enqueues the job that works it, in one transaction. A
// request with any problem starts nothing and says which items are wrong.
func (s *Service) StartBulk(ctx context.Context, actor string, req BulkRequest) (*gatehouse.BulkOperation, error) {
	ctx = withActor(ctx, actor)
	op, err := s.startBulk(ctx, actor, req)
	detail := map[string]any{"action": req.Action, "items": len(req.Items) + len(req.IDs)}
	if req.Pattern != "" {
		detail["pattern"] = req.Pattern
	}
	if err := s.recordRefusal(ctx, ActionBulkStart, "", detail, err); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "bulk operation started", "bulk", op.ID, "action", op.Action, "items", op.Total, "by", actor)
	return op, nil
}

func (s *Service) startBulk(ctx context.Context, actor string, req BulkRequest) (*gatehouse.BulkOperation, error) {
	targets, err := bulkTargets(req)
	if err != nil {
		return nil, err
	}
	op := &gatehouse.BulkOperation{ID: newID(), Action: req.Action, Actor: actor}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		plan := &BulkPlan{Items: make([]gatehouse.BulkItem, len(targets))}
		if err := planItems(ctx, tx, req.Action, targets, plan); err != nil {
			return err
		}
		if len(plan.Problems) > 0 {
			return problemsError(plan.Problems)
		}
		op.Items = plan.Items
		if err := tx.CreateBulk(ctx, op, gatehouse.OriginOf(ctx)); err != nil {
			return err
		}
		if _, err := tx.Enqueue(ctx, bulkArgs{OperationID: op.ID}, nil); err != nil {
			return fmt.Errorf("provision: enqueue bulk operation: %w", err)
		}
		detail := map[string]any{"action": op.Action, "items": op.Total}
		if req.Pattern != "" {
			detail["pattern"] = req.Pattern
		}
		return s.audit(ctx, tx, ActionBulkStart, op.ID, nil, detail)
	})
	if err != nil {
		return nil, err
	}
	op.Items = nil
	return op, nil
}

func problemsError(ps []BulkProblem) error {
	var b strings.Builder
	for i, p := range ps[:min(len(ps), maxBulkProblems)] {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "item %d: %s", p.Item, p.Error)
	}
	if len(ps) > maxBulkProblems {
		fmt.Fprintf(&b, "; and %d more", len(ps)-maxBulkProblems)
	}
	return gatehouse.Errorf(gatehouse.EINVALID, "nothing was started: %d of the items are refused: %s", len(ps), b.String())
}

// Bulk returns a bulk operation with its progress and each item's result.
func (s *Service) Bulk(ctx context.Context, id string) (*gatehouse.BulkOperation, error) {
	var op *gatehouse.BulkOperation
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		op, err = tx.Bulk(ctx, id, true)
		return err
	})
	return op, err
}

// bulkTargets checks the request's shape and turns a pattern into named
// targets.
func bulkTargets(req BulkRequest) ([]BulkTarget, error) {
	if req.Action != gatehouse.BulkApprove && req.Action != gatehouse.BulkDismiss {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "action must be %q or %q, not %q", gatehouse.BulkApprove, gatehouse.BulkDismiss, req.Action)
	}
	if (len(req.Items) > 0) == (len(req.IDs) > 0) {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "give either items or ids, and at least one gateway")
	}
	if n := len(req.Items) + len(req.IDs); n > MaxBulkItems {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "%d gateways in one bulk operation; at most %d", n, MaxBulkItems)
	}
	if len(req.Items) > 0 {
		if req.Pattern != "" || req.Start != nil || len(req.Labels) > 0 {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "pattern, start and labels go with ids; items carry their own names and labels")
		}
		return req.Items, nil
	}
	return patternTargets(req)
}

func patternTargets(req BulkRequest) ([]BulkTarget, error) {
	targets := make([]BulkTarget, len(req.IDs))
	for i, id := range req.IDs {
		targets[i] = BulkTarget{ID: id}
	}
	if req.Action == gatehouse.BulkDismiss {
		if req.Pattern != "" || req.Start != nil || len(req.Labels) > 0 {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "a dismissal takes no pattern, start or labels")
		}
		return targets, nil
	}
	if req.Pattern == "" {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "approving by ids needs a name pattern such as site-a-{n:03}")
	}
	if err := gatehouse.ValidateLabels(req.Labels); err != nil {
		return nil, err
	}
	start := 1
	if req.Start != nil {
		start = *req.Start
	}
	names, err := ExpandPattern(req.Pattern, start, len(targets))
	if err != nil {
		return nil, err
	}
	for i := range targets {
		targets[i].Name, targets[i].Labels = names[i], req.Labels
	}
	return targets, nil
}

// placeholder is a pattern's counter: {n}, or {n:0W} for W digits with
// leading zeros.
var placeholder = regexp.MustCompile(`\{n(?::0([1-9]))?\}`)

// ExpandPattern returns count names from a pattern holding exactly one
// placeholder, numbered from start. Names are not checked against the name
// policy here; the plan checks each one and says which are refused.
func ExpandPattern(pattern string, start, count int) ([]string, error) {
	locs := placeholder.FindAllStringSubmatchIndex(pattern, -1)
	if len(locs) != 1 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID,
			"the name pattern %q must hold exactly one {n} or {n:03} placeholder, found %d", pattern, len(locs))
	}
	loc := locs[0]
	before, after := pattern[:loc[0]], pattern[loc[1]:]
	if strings.ContainsAny(before+after, "{}") {
		return nil, gatehouse.Errorf(gatehouse.EINVALID,
			"the name pattern %q has a brace outside its placeholder; only {n} and {n:0W} (W one digit) are understood", pattern)
	}
	if start < 0 || start > 1_000_000_000 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "start must be 0 to 1000000000, not %d", start)
	}
	width := 0
	if loc[2] >= 0 {
		width, _ = strconv.Atoi(pattern[loc[2]:loc[3]])
	}
	names := make([]string, count)
	for i := range names {
		names[i] = fmt.Sprintf("%s%0*d%s", before, width, start+i, after)
	}
	return names, nil
}

// planItems resolves each target to its gateway and checks it: the item
// itself, and against the others (the same gateway or name twice) and
// gatehouse's names. What the backends hold is asked as each item is
// approved; a name taken there fails that item alone.
func planItems(ctx context.Context, tx *store.Tx, action string, targets []BulkTarget, plan *BulkPlan) error {
	devices, names := map[string]int{}, map[string]int{}
	for i, t := range targets {
		item, problem, err := planItem(ctx, tx, action, t)
		if err != nil {
			return err
		}
		if problem == "" {
			problem = repeated(devices, item.DeviceID, "gateway "+item.DeviceID, i)
		}
		if problem == "" && action == gatehouse.BulkApprove {
			problem = repeated(names, item.Name, fmt.Sprintf("name %q", item.Name), i)
		}
		item.Seq, item.State = i+1, gatehouse.BulkWaiting
		plan.Items[i] = item
		if problem != "" {
			plan.Problems = append(plan.Problems, BulkProblem{Item: i + 1, Error: problem})
		}
	}
	return nil
}

// repeated says where a value was seen first, or records it.
func repeated(seen map[string]int, v, what string, i int) string {
	if first, ok := seen[v]; ok {
		return fmt.Sprintf("%s is also item %d", what, first+1)
	}
	seen[v] = i
	return ""
}

// planItem returns the item and what is wrong with it ("" if nothing);
// err is for failures of the database only.
func planItem(ctx context.Context, tx *store.Tx, action string, t BulkTarget) (gatehouse.BulkItem, string, error) {
	item := gatehouse.BulkItem{Name: t.Name, Labels: t.Labels}
	d, problem, err := resolveTarget(ctx, tx, t)
	if err != nil || problem != "" {
		item.DeviceID, item.MAC = t.ID, t.MAC
		return item, problem, err
	}
	item.DeviceID, item.MAC, item.DeviceState = d.ID, d.MAC, d.State
	if action == gatehouse.BulkDismiss {
		if t.Name != "" || len(t.Labels) > 0 {
			return item, "a dismissal takes no name or labels", nil
		}
		return item, "", nil
	}
	problem, err = checkBulkName(ctx, tx, d, t)
	return item, problem, err
}

func checkBulkName(ctx context.Context, tx *store.Tx, d *gatehouse.Device, t BulkTarget) (string, error) {
	if err := gatehouse.ValidateName(t.Name); err != nil {
		return gatehouse.ErrorMessage(err), nil
	}
	if err := gatehouse.ValidateLabels(t.Labels); err != nil {
		return gatehouse.ErrorMessage(err), nil
	}
	other, err := tx.DeviceByName(ctx, t.Name)
	switch {
	case err == nil && other.ID != d.ID:
		return nameTakenBy(t.Name, other).Message, nil
	case err != nil && gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND:
		return "", err
	}
	return "", nil
}

// resolveTarget finds the gateway an item names. A MAC that several
// pending gateways claim is refused: one of them may be an impostor, and
// the operator must pick by id.
func resolveTarget(ctx context.Context, tx *store.Tx, t BulkTarget) (*gatehouse.Device, string, error) {
	switch {
	case (t.ID == "") == (t.MAC == ""):
		return nil, "give either id or mac", nil
	case t.ID != "":
		d, err := tx.Device(ctx, t.ID)
		if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
			return nil, fmt.Sprintf("no gateway has id %q", t.ID), nil
		}
		return d, "", err
	}
	mac, err := gatehouse.NormalizeMAC(t.MAC)
	if err != nil {
		return nil, gatehouse.ErrorMessage(err), nil
	}
	ds, err := tx.DevicesByMAC(ctx, mac)
	if err != nil {
		return nil, "", err
	}
	pending := 0
	for _, d := range ds {
		if d.State == gatehouse.StatePending {
			pending++
		}
	}
	switch {
	case len(ds) == 0:
		return nil, fmt.Sprintf("no gateway has MAC %s", mac), nil
	case pending > 1:
		return nil, fmt.Sprintf("%d pending gateways claim MAC %s; compare their codes and name them by id", pending, mac), nil
	}
	return ds[0], "", nil
}

// bulkArgs is the durable job that works one bulk operation's items.
type bulkArgs struct {
	OperationID string `json:"operation_id" river:"unique"`
}

// Kind is stored with every job; never rename it.
func (bulkArgs) Kind() string { return "bulk_operation" }

// InsertOpts keeps one job per operation. It runs in the default queue: a
// queue of its own would add one more poller of the one database
// connection, which costs every job; a bulk job takes one worker, and
// hands it back between slices.
func (bulkArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type bulkWorker struct {
	river.WorkerDefaults[bulkArgs]
	svc *Service
}

func (w *bulkWorker) Work(ctx context.Context, job *river.Job[bulkArgs]) error {
	return w.svc.runBulk(ctx, job.Args.OperationID)
}

// bulkSlice is how long one run of the job works before it hands the rest
// to its next run, which keeps every run well within the job timeout and
// lets a shutdown stop the job between items.
func (s *Service) bulkSlice() time.Duration { return min(s.cfg.JobTimeout/2, 30*time.Second) }

// runBulk works an operation's waiting items in order, a few at a time,
// each one recorded as it finishes. An interrupted run loses nothing: the
// next run starts at the first item still waiting.
func (s *Service) runBulk(ctx context.Context, id string) error {
	var origin gatehouse.Origin
	var op *gatehouse.BulkOperation
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if op, err = tx.Bulk(ctx, id, false); err != nil {
			return err
		}
		origin, err = tx.BulkOrigin(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	ctx = gatehouse.WithOrigin(ctx, origin)
	deadline := time.Now().Add(s.bulkSlice())
	for time.Now().Before(deadline) {
		var items []gatehouse.BulkItem
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			var err error
			items, err = tx.WaitingBulkItems(ctx, id, bulkBatch)
			return err
		})
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return s.finishBulk(ctx, op)
		}
		if err := s.runBulkItems(ctx, op, items, deadline); err != nil {
			return err
		}
	}
	return river.JobSnooze(0)
}

// runBulkItems works items bulkConcurrency at a time, starting none past
// the deadline (approvals wait on backend quotas, so a batch can take a
// while), and records the outcomes together. A failure that may pass (a
// backend that cannot answer, a shutdown) leaves its item waiting for a
// later run; the others carry on.
func (s *Service) runBulkItems(ctx context.Context, op *gatehouse.BulkOperation, items []gatehouse.BulkItem, deadline time.Time) error {
	sem := make(chan struct{}, bulkConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var transient error
	var decided []bulkOutcome
	for _, it := range items {
		sem <- struct{}{}
		if ctx.Err() != nil || time.Now().After(deadline) {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := s.runBulkItem(ctx, op, it)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				transient = cmpErr(transient, err)
				return
			}
			decided = append(decided, out)
		})
	}
	wg.Wait()
	if err := s.recordBulkItems(context.WithoutCancel(ctx), op.ID, decided); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return river.JobSnooze(0) // stopped: the next start resumes here
	}
	return transient
}

// bulkOutcome is one item's decision, to be recorded.
type bulkOutcome struct {
	seq           int
	state, result string
}

// recordBulkItems records a batch's outcomes in one transaction. Each
// decision was committed on its own before; should this record be lost,
// the next run finds the decision made and counts the item done without
// making it again (bulkDecide).
func (s *Service) recordBulkItems(ctx context.Context, id string, outs []bulkOutcome) error {
	if len(outs) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, o := range outs {
			if _, err := tx.FinishBulkItem(ctx, id, o.seq, o.state, o.result); err != nil {
				return err
			}
		}
		return nil
	})
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// runBulkItem approves or dismisses one item's gateway through the same
// path an operator's single decision takes, and returns the outcome to
// record. It returns only failures that may pass.
func (s *Service) runBulkItem(ctx context.Context, op *gatehouse.BulkOperation, it gatehouse.BulkItem) (bulkOutcome, error) {
	state, result, err := s.bulkDecide(ctx, op, it)
	if err != nil {
		s.log.Warn("bulk item will be retried", "bulk", op.ID, "item", it.Seq, "device", it.DeviceID, "err", err)
		return bulkOutcome{}, err
	}
	return bulkOutcome{seq: it.Seq, state: state, result: result}, nil
}

// bulkDecide returns the item's state and result. An item whose decision
// was made already (a run cut off between the decision and its record)
// counts as done and is not made again.
func (s *Service) bulkDecide(ctx context.Context, op *gatehouse.BulkOperation, it gatehouse.BulkItem) (string, string, error) {
	d, err := s.bulkDevice(ctx, it)
	if err != nil {
		return failedOr(err)
	}
	actor := op.Actor
	switch op.Action {
	case gatehouse.BulkApprove:
		if d.State != gatehouse.StatePending && d.Name == it.Name {
			return gatehouse.BulkDone, "approved as " + it.Name, nil
		}
		if _, err := s.decideApproval(withApprovalSource(ctx, ApprovedInBulk), actor, it.DeviceID, Approval{Name: it.Name, Labels: it.Labels}); err != nil {
			return failedOr(err)
		}
		return gatehouse.BulkDone, "approved as " + it.Name, nil
	default:
		if d.State == gatehouse.StateDismissed {
			return gatehouse.BulkDone, "dismissed", nil
		}
		if _, err := s.Dismiss(ctx, actor, it.DeviceID); err != nil {
			return failedOr(err)
		}
		return gatehouse.BulkDone, "dismissed", nil
	}
}

// bulkDevice is what the decision needs of the item's device: its state
// and name. An item read while its device was pending has no decision made
// yet, so it needs no read of its own (a decision made since is refused by
// the approval's or dismissal's own transaction, as it would be after a
// read); any other is read as stored, not through Service.Device, whose
// flags are worked out against every other pending gateway.
func (s *Service) bulkDevice(ctx context.Context, it gatehouse.BulkItem) (*gatehouse.Device, error) {
	if it.DeviceState == gatehouse.StatePending {
		return &gatehouse.Device{ID: it.DeviceID, State: it.DeviceState}, nil
	}
	var d *gatehouse.Device
	err := s.db.View(ctx, func(tx *store.Tx) error {
		var err error
		d, err = tx.Device(ctx, it.DeviceID)
		return err
	})
	return d, err
}

// failedOr makes a refusal the item's result and passes on what may pass.
func failedOr(err error) (string, string, error) {
	switch gatehouse.ErrorCode(err) {
	case gatehouse.ECONFLICT, gatehouse.EINVALID, gatehouse.ENOTFOUND, gatehouse.EFORBIDDEN:
		return gatehouse.BulkFailed, gatehouse.ErrorMessage(err), nil
	}
	return "", "", err
}

func (s *Service) finishBulk(ctx context.Context, op *gatehouse.BulkOperation) error {
	var done *gatehouse.BulkOperation
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.FinishBulk(ctx, op.ID); err != nil {
			return err
		}
		var err error
		done, err = tx.Bulk(ctx, op.ID, false)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("bulk operation finished", "bulk", op.ID, "action", op.Action, "done", done.Done, "failed", done.Failed)
	return nil
}
