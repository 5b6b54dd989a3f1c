package config

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Size is a byte count written as plain bytes or a number with a unit:
// "5242880", "5MB" (10^6), "10MiB" (2^20), "1.5GB". It implements
// encoding.TextMarshaler and TextUnmarshaler, so it works with flag.TextVar.
type Size int64

// sizeHint says what a valid size looks like; every size error ends with it.
const sizeHint = "use bytes or a number with a unit, such as 5242880, 5MB or 10MiB"

// maxSizeLen bounds the text ParseSize looks at; longer input cannot be a
// sensible size and would only make big-number arithmetic slow.
const maxSizeLen = 64

// sizeUnits maps lower-case unit names to bytes. Decimal units are powers of
// 1000, binary (…iB) powers of 1024, as on every disk label and in IEC 80000.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
}

// ParseSize parses a byte count such as "5242880", "5MB", "10MiB", "1.5GB"
// or "64 KiB". Units are case-insensitive. A bare K/M/G/T is rejected as
// ambiguous, and so are negative sizes, fractions of a byte and sizes that
// do not fit in an int64. Errors say what is wrong and how to write it.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size (" + sizeHint + ")")
	}
	invalid := fmt.Errorf("invalid size %s (%s)", quote(t), sizeHint)
	if len(t) > maxSizeLen {
		return 0, invalid
	}
	num, neg := t, false
	if num[0] == '-' || num[0] == '+' {
		neg, num = num[0] == '-', num[1:]
	}
	whole, frac, unit := splitNumber(num)
	if whole == "" || (strings.HasPrefix(num[len(whole):], ".") && frac == "") {
		return 0, invalid
	}
	unit = strings.ToLower(strings.TrimSpace(unit))
	mult, ok := sizeUnits[unit]
	if !ok {
		switch unit {
		case "k", "m", "g", "t", "p":
			n := whole
			if frac != "" {
				n += "." + frac
			}
			u := strings.ToUpper(unit)
			return 0, fmt.Errorf("size %s has an ambiguous unit (write %s%sB for powers of 1000 or %s%siB for powers of 1024)", quote(t), n, u, n, u)
		}
		return 0, invalid
	}
	// Exact arithmetic: "1.5GB" is 1500000000, "0.1B" is not a byte count.
	v, _ := new(big.Int).SetString(whole+frac, 10)
	v.Mul(v, big.NewInt(mult))
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	q, r := new(big.Int).QuoRem(v, scale, new(big.Int))
	if r.Sign() != 0 {
		return 0, fmt.Errorf("size %s is not a whole number of bytes (%s)", quote(t), sizeHint)
	}
	if neg && q.Sign() != 0 {
		return 0, fmt.Errorf("size %s is negative (%s)", quote(t), sizeHint)
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("size %s is too large (the limit is 8EiB)", quote(t))
	}
	return q.Int64(), nil
}

// splitNumber splits "12.50MB" into "12", "50" and "MB". frac is "" when
// there is no decimal point or nothing after it.
func splitNumber(s string) (whole, frac, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	whole, rest = s[:i], s[i:]
	if strings.HasPrefix(rest, ".") {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		frac, rest = rest[1:j], rest[j:]
	}
	return whole, frac, rest
}

// sizeNames lists units from largest to smallest for String.
var sizeNames = []struct {
	name string
	n    int64
}{
	{"PiB", 1 << 50}, {"PB", 1e15}, {"TiB", 1 << 40}, {"TB", 1e12},
	{"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6},
	{"KiB", 1 << 10}, {"KB", 1e3},
}

// String returns the size in the largest unit that divides it exactly
// ("5MiB", "5MB"; 1500 stays "1500"), so ParseSize(s.String()) gives s back.
func (s Size) String() string {
	if s > 0 {
		for _, u := range sizeNames {
			if int64(s)%u.n == 0 {
				return strconv.FormatInt(int64(s)/u.n, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}
