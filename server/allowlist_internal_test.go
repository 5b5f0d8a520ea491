package server

import (
	"strings"
	"time"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/roster"
)

func sampleAllowlistPage() *provision.AllowlistPage {
	used := time.Now()
	return &provision.AllowlistPage{Total: 2, Entries: []gatehouse.AllowlistEntry{
		{MAC: "02:00:00:00:10:01", Name: "gw-01", Labels: map[string]string{"site": "a"}, ImportedBy: "user:olga", ImportedAt: time.Now(),
			DeviceID: "x57caa5lsobd", Fingerprint: strings.Repeat("ab", 32), UsedAt: &used},
		{MAC: "02:00:00:00:10:02", Name: "gw-02", ImportedBy: "user:olga", ImportedAt: time.Now()},
	}}
}

// sampleImport is an import's answer as handleImportAllowlist sends it:
// refused (422) with its error, or done.
func sampleImport(refused bool) importResponse {
	page := sampleAllowlistPage()
	res := &provision.ImportResult{Rows: 3, Imported: page.Entries[1:], Unchanged: 1,
		Errors: []roster.RowError{{Line: 3, Msg: `invalid MAC "x"`}}}
	if !refused {
		return newImportResponse(res, nil)
	}
	res.Imported = nil // as a refused import leaves it
	return newImportResponse(res, &errorMessage{Code: gatehouse.EINVALID, Message: "1 of 3 rows have errors; nothing was imported"})
}
