package main

import (
	"fmt"
	"io"
	"strings"

	"gatehouse"
)

// rekeyFlags marks a re-key candidate in a listing: it is not a stranger.
func rekeyFlags(d *gatehouse.Device) []string {
	if d.RekeyOf == nil {
		return nil
	}
	return []string{"re-key-of:" + d.RekeyOf.Name}
}

// rekeyFields are show's lines about re-keys: the gateway a candidate
// would re-key, or a gateway's candidates.
func rekeyFields(d *gatehouse.Device) [][2]string {
	var out [][2]string
	if t := d.RekeyOf; t != nil {
		out = append(out, [2]string{"Re-key of", t.Name + " (" + t.ID + ", " + string(t.State) + "); approve with: gatehouse devices approve " + d.ID})
	}
	if len(d.RekeyCandidates) > 0 {
		out = append(out, [2]string{"Re-key candidates", strings.Join(d.RekeyCandidates, ", ")})
	}
	return out
}

// writeRekeyNote tells the listing's reader which rows are re-key
// candidates and what approving one does.
func writeRekeyNote(w io.Writer, ds []*gatehouse.Device) {
	n := 0
	for _, d := range ds {
		if d.RekeyOf != nil {
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "! %d came with the MAC of an approved gateway (re-key-of): a reflash, or an impostor; compare the code, "+
			"then 'devices approve ID' (no name) moves that gateway onto the new key, or dismiss it\n", n)
	}
}
