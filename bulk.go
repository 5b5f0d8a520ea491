package gatehouse

import "time"

// Bulk actions: what one bulk operation does to each of its gateways.
const (
	BulkApprove = "approve"
	BulkDismiss = "dismiss"
)

// Bulk item states. An item is waiting until its gateway has been approved
// or dismissed (done) or refused (failed, with the reason).
const (
	BulkWaiting = "waiting"
	BulkDone    = "done"
	BulkFailed  = "failed"
)

// BulkOperation is an operator's approval or dismissal of many pending
// gateways at once, worked through item by item by a durable job.
type BulkOperation struct {
	ID         string     `json:"id"`
	Action     string     `json:"action"`
	Actor      string     `json:"actor"`
	Total      int        `json:"total"`
	Done       int        `json:"done"`
	Failed     int        `json:"failed"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Items      []BulkItem `json:"items,omitempty"`
}

// Finished reports whether every item has its result.
func (b *BulkOperation) Finished() bool { return b.Done+b.Failed >= b.Total }

// BulkItem is one gateway of a bulk operation and what became of it.
type BulkItem struct {
	Seq      int               `json:"seq"`
	DeviceID string            `json:"device_id"`
	MAC      string            `json:"mac,omitempty"`
	Name     string            `json:"name,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	State    string            `json:"state"`
	Result   string            `json:"result,omitempty"`
	// DeviceState is the gateway's state now, for following provisioning.
	DeviceState State `json:"device_state,omitempty"`
}

// BulkProblem is what is wrong with one item of a bulk request; Item counts
// from 1 in the order the request gave them.
type BulkProblem struct {
	Item  int    `json:"item"`
	Error string `json:"error"`
}

// BulkPlan is what a bulk request would do: each gateway with the name it
// would get, and what is wrong with the request, if anything.
type BulkPlan struct {
	Action   string        `json:"action"`
	Items    []BulkItem    `json:"items"`
	Problems []BulkProblem `json:"problems"`
}

// BulkRequest asks for many pending gateways to be approved or dismissed.
// Either Items name each gateway (by id or MAC) with its name, or IDs with
// a Pattern give the names: "site-a-{n:03}" names the first site-a-001
// when Start is 1 (the default). DryRun asks what it would do and starts
// nothing.
type BulkRequest struct {
	Action  string       `json:"action"`
	Items   []BulkTarget `json:"items,omitempty"`
	IDs     []string     `json:"ids,omitempty"`
	Pattern string       `json:"pattern,omitempty"`
	Start   *int         `json:"start,omitempty"`
	// Labels go on every gateway a pattern names.
	Labels map[string]string `json:"labels,omitempty"`
	DryRun bool              `json:"dry_run,omitempty"`
}

// BulkTarget is one gateway of a BulkRequest: by ID or by MAC.
type BulkTarget struct {
	ID     string            `json:"id,omitempty"`
	MAC    string            `json:"mac,omitempty"`
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}
