package provision

import (
	"context"
	"time"

	"gatehouse"
)

// Metrics receives what provisioning does, for monitoring. The metrics
// package implements it over Prometheus; provision knows only these calls,
// which must be cheap and never block.
type Metrics interface {
	// Approved counts one approval made by source: ApprovedByOperator,
	// ApprovedInBulk, ApprovedByAllowlist or ApprovedRekey.
	Approved(source string)
	// StepRan records one attempt of a backend step: how long the backend
	// took, and its error if the attempt failed.
	StepRan(step gatehouse.StepName, took time.Duration, err error)
}

// Who approved, as Metrics.Approved is told.
const (
	ApprovedByOperator  = "operator"
	ApprovedInBulk      = "bulk"
	ApprovedByAllowlist = "allowlist"
	ApprovedRekey       = "rekey"
)

type noMetrics struct{}

func (noMetrics) Approved(string)                                  {}
func (noMetrics) StepRan(gatehouse.StepName, time.Duration, error) {}

type approvalSourceKey struct{}

// withApprovalSource marks approvals made under ctx as made by source, for
// the callers of Approve that are not an operator's single decision.
func withApprovalSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, approvalSourceKey{}, source)
}

func approvalSource(ctx context.Context) string {
	if s, ok := ctx.Value(approvalSourceKey{}).(string); ok {
		return s
	}
	return ApprovedByOperator
}
