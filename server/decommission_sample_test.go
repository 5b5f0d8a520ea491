package server

import (
	"time"

	"gatehouse"
)

// sampleDecommissioned is a decommissioned device with one backend done,
// one failing and one waiting, for the schema checks.
func sampleDecommissioned() *gatehouse.Device {
	d := sampleDevice()
	now := time.Now().UTC()
	d.State = gatehouse.StateDecommissioned
	d.Decommission = &gatehouse.Decommission{DeviceID: d.ID, Name: d.Name, By: "token:alice", At: &now,
		Backends: []gatehouse.BackendRemoval{
			{Backend: "mender", State: gatehouse.StepSucceeded, Attempts: 1, StartedAt: &now, FinishedAt: &now,
				Removals: []gatehouse.Removal{{Backend: "mender", Object: "device 5f1c", Result: gatehouse.RemovalRemoved}}},
			{Backend: "dps", State: gatehouse.StepFailed, Attempts: 3, LastError: "dps: 503", Removals: []gatehouse.Removal{}},
			{Backend: "iothub", State: gatehouse.StepPending, Waiting: "waiting for dps", Removals: []gatehouse.Removal{}},
		}}
	return d
}
