// Package bench holds gatehouse's performance benchmarks. They print their
// figures; run them with `go test -run '^$' -bench . ./bench`.
package bench
