package view

// The view lists jobs in one stable order, independent of the order their
// events arrived in, so a cursor (the last id of a page) means the same
// thing on every replica and after every restart:
//
//   - ids that are canonical integers ("1234", "-5") come first, in
//     numeric order, so the seed's numeric ids list as 1, 2, ..., 10;
//   - every other id follows, in byte order of its text. Ids assigned by
//     the API are time-ordered text, so they list oldest first.
//
// The comparison works on the text alone (the same key can arrive as 1234
// and as "1234"), without parsing.

// compareIDText orders two job ids as described above.
func compareIDText(a, b string) int {
	an, bn := isCanonicalInt(a), isCanonicalInt(b)
	switch {
	case an && bn:
		return compareInts(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isCanonicalInt reports whether s is an integer written the way
// strconv.FormatInt writes it: an optional '-', no leading zeros, and at
// most 19 digits (the int64 range is checked by job.ParseID on input; here
// only the shape matters for ordering).
func isCanonicalInt(s string) bool {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
		if digits == "0" {
			return false
		}
	}
	if len(digits) == 0 || len(digits) > 19 {
		return false
	}
	if len(digits) > 1 && digits[0] == '0' {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// compareInts compares two canonical integers by their text: sign first,
// then length, then digits.
func compareInts(a, b string) int {
	aneg, bneg := a[0] == '-', b[0] == '-'
	switch {
	case aneg && !bneg:
		return -1
	case !aneg && bneg:
		return 1
	}
	c := 0
	switch {
	case len(a) != len(b):
		c = -1
		if len(a) > len(b) {
			c = 1
		}
	case a < b:
		c = -1
	case a > b:
		c = 1
	}
	if aneg {
		return -c
	}
	return c
}
