package ledger

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/segmentio/kafka-go"
)

// appendRecordSet appends msgs[indexes...] to b as a produce request's
// record set: its int32 size, then one uncompressed record batch of
// Kafka's message format v2 (magic 2, the only format Kafka 4 accepts),
// without an idempotent producer id. kafka-go's generic encoder wrote it
// a field at a time through its page buffers, a quarter of a bulk
// write's CPU; records are plain byte strings, so this writes them
// straight into one slice.
//
// Layout (KIP-98): baseOffset int64, batchLength int32,
// partitionLeaderEpoch int32, magic int8, crc uint32 (CRC-32C of
// everything after it), attributes int16, lastOffsetDelta int32,
// baseTimestamp int64, maxTimestamp int64, producerId int64,
// producerEpoch int16, baseSequence int32, record count int32, records.
func appendRecordSet(b []byte, msgs []kafka.Message, indexes []int32, now time.Time) []byte {
	start := len(b)
	nowMs := now.UnixMilli()
	base, maxTs := int64(-1), int64(-1)
	for _, i := range indexes {
		ts := timestampOf(&msgs[i], nowMs)
		if base < 0 {
			base = ts
		}
		maxTs = max(maxTs, ts)
	}
	b = binary.BigEndian.AppendUint32(b, 0)          // record set size, set below
	b = binary.BigEndian.AppendUint64(b, 0)          // baseOffset: the broker assigns offsets
	b = binary.BigEndian.AppendUint32(b, 0)          // batchLength, set below
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // partitionLeaderEpoch -1: the broker sets it
	b = append(b, 2)                                 // magic
	b = binary.BigEndian.AppendUint32(b, 0)          // crc, set below
	crcFrom := len(b)
	b = binary.BigEndian.AppendUint16(b, 0) // attributes: no compression, create time
	b = binary.BigEndian.AppendUint32(b, uint32(len(indexes)-1))
	b = binary.BigEndian.AppendUint64(b, uint64(base))
	b = binary.BigEndian.AppendUint64(b, uint64(maxTs))
	b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff) // producerId -1
	b = binary.BigEndian.AppendUint16(b, 0xffff)             // producerEpoch -1
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)         // baseSequence -1
	b = binary.BigEndian.AppendUint32(b, uint32(len(indexes)))
	for delta, i := range indexes {
		m := &msgs[i]
		b = appendRecord(b, m, timestampOf(m, nowMs)-base, int64(delta))
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	binary.BigEndian.PutUint32(b[start+4+8:], uint32(len(b)-start-4-12))
	binary.BigEndian.PutUint32(b[start+4+17:], crc32.Checksum(b[crcFrom:], castagnoli))
	return b
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// timestampOf is the record's create time in milliseconds: its own
// Time, or now (every record of a write is created at its call).
func timestampOf(m *kafka.Message, nowMs int64) int64 {
	if m.Time.IsZero() {
		return nowMs
	}
	return m.Time.UnixMilli()
}

// appendRecord appends one record: length, attributes, timestamp and
// offset deltas, key, value and headers, with Kafka's zig-zag varints
// (binary.AppendVarint's encoding). A nil key or value is length -1.
func appendRecord(b []byte, m *kafka.Message, tsDelta, offsetDelta int64) []byte {
	size := 1 + varintLen(tsDelta) + varintLen(offsetDelta) +
		bytesLen(m.Key) + bytesLen(m.Value) + varintLen(int64(len(m.Headers)))
	for _, h := range m.Headers {
		size += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	b = binary.AppendVarint(b, int64(size))
	b = append(b, 0) // attributes (unused)
	b = binary.AppendVarint(b, tsDelta)
	b = binary.AppendVarint(b, offsetDelta)
	b = appendBytes(b, m.Key)
	b = appendBytes(b, m.Value)
	b = binary.AppendVarint(b, int64(len(m.Headers)))
	for _, h := range m.Headers {
		b = binary.AppendVarint(b, int64(len(h.Key)))
		b = append(b, h.Key...)
		b = appendBytes(b, h.Value)
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	return append(binary.AppendVarint(b, int64(len(v))), v...)
}

// bytesLen is the encoded size of v: its varint length and its bytes.
func bytesLen(v []byte) int {
	if v == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(v))) + len(v)
}

func varintLen(x int64) int {
	ux := uint64(x) << 1 // zig-zag, as binary.AppendVarint
	if x < 0 {
		ux = ^ux
	}
	n := 1
	for ux >= 0x80 {
		ux >>= 7
		n++
	}
	return n
}

// recordSetSize is the most bytes appendRecordSet needs for these
// records, so a buffer is allocated once.
func recordSetSize(msgs []kafka.Message, indexes []int32) int {
	n := 4 + 61
	for _, i := range indexes {
		m := &msgs[i]
		n += 5 + 1 + 10 + 5 + len(m.Key) + 5 + len(m.Value) + 5
		for _, h := range m.Headers {
			n += 5 + len(h.Key) + 5 + len(h.Value)
		}
	}
	return n
}
