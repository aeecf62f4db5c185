package job

import "testing"

// The view decodes every record of the topic when it rebuilds: decoding
// a worker's DONE must allocate only the strings it keeps (id, type,
// worker, group), not the event itself or its keys.
func TestDecodeAllocations(t *testing.T) {
	rec := []byte(`{"job_id":1666668707320239,"status":"DONE","created_at":"2026-11-26T05:25:57.079508967Z","updated_at":"2026-11-26T05:26:20.041260705Z","type":"mock","attempt":1,"worker":"vm-18820-4","group":"view-bench"}`)
	var e Event
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if e, err = Decode(rec); err != nil {
			t.Fatal(err)
		}
	})
	if e.Status != StatusDone || e.Worker != "vm-18820-4" || e.Attempt != 1 {
		t.Fatalf("decoded %+v", e)
	}
	if allocs > 4 {
		t.Fatalf("decoding a DONE allocates %.0f times, want at most 4 (id, type, worker, group)", allocs)
	}
}
