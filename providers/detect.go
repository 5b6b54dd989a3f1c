package providers

import (
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Detect returns the profile for an S3 endpoint. The endpoint may be empty
// (AWS), a bare host, host:port, or a URL with scheme and path. Unknown
// endpoints get the generic profile (path-style, plain bodies). Detection is
// a lookup in the table; explicit user settings are applied afterwards with
// Profile.With.
func Detect(endpoint string) Profile {
	p, _ := Lookup(endpoint)
	return p
}

// RegionFromHostWhy is the reason of a Region read from the endpoint host
// (s3.<region>.backblazeb2.com): the provider signs with exactly that region.
const RegionFromHostWhy = "taken from the endpoint host"

// Lookup is Detect that also says which host pattern of the table matched:
// "" for an empty endpoint (AWS) and for unknown endpoints (generic). It
// lets tools explain a detection ("s3.x.backblazeb2.com matches
// *.backblazeb2.com").
func Lookup(endpoint string) (p Profile, pattern string) {
	host := Host(endpoint)
	if host == "" {
		return awsRow.Profile.clone(), ""
	}
	for _, r := range table {
		pattern := r.match(host)
		if pattern == "" {
			continue
		}
		p := r.Profile.clone()
		if region := r.region(host); region != "" {
			p.Region = set(region, RegionFromHostWhy)
		}
		return p, pattern
	}
	return genericRow.Profile.clone(), ""
}

// Host returns the lower-case host of an endpoint, without port, brackets or
// trailing dot; "" when the endpoint is empty or has no host.
func Host(endpoint string) string {
	e := strings.TrimSpace(endpoint)
	if e == "" {
		return ""
	}
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil {
		// Fall back to the text before any path, for endpoints url.Parse
		// rejects (it should not happen for anything an SDK could use).
		h := strings.TrimPrefix(e, "https://")
		h, _, _ = strings.Cut(h, "/")
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		return strings.TrimSuffix(strings.ToLower(h), ".")
	}
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// match returns the first host pattern of r that host matches, or "".
func (r Row) match(host string) string {
	for _, pattern := range r.Hosts {
		if ok, _ := path.Match(pattern, host); ok {
			return pattern
		}
	}
	return ""
}

// regionREs holds the compiled RegionFromHost patterns; read-only after init.
var regionREs = func() map[string]*regexp.Regexp {
	m := map[string]*regexp.Regexp{}
	for _, r := range table {
		if r.RegionFromHost != "" {
			m[r.RegionFromHost] = regexp.MustCompile(r.RegionFromHost)
		}
	}
	return m
}()

func (r Row) region(host string) string {
	if r.RegionFromHost == "" {
		return ""
	}
	if m := regionREs[r.RegionFromHost].FindStringSubmatch(host); m != nil {
		return m[1]
	}
	return ""
}
