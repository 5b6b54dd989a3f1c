package providers

import (
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Detect returns the profile for an S3 endpoint. The endpoint may be empty
// (AWS), a bare host, host:port, or a URL with scheme and path. Unknown
// endpoints get the generic profile (path-style, plain bodies). Detection is
// a lookup in the table; explicit user settings are applied afterwards with
// Profile.With.
func Detect(endpoint string) Profile {
	host := Host(endpoint)
	if host == "" {
		return awsRow.Profile.clone()
	}
	for _, r := range table {
		if !r.matches(host) {
			continue
		}
		p := r.Profile.clone()
		if region := r.region(host); region != "" {
			p.Region = set(region, "taken from the endpoint host")
		}
		return p
	}
	return genericRow.Profile.clone()
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

func (r Row) matches(host string) bool {
	return slices.ContainsFunc(r.Hosts, func(pattern string) bool {
		ok, _ := path.Match(pattern, host)
		return ok
	})
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
