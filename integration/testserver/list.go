package testserver

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// Object is one entry of a bucket listing.
type Object struct {
	Key  string
	ETag string
	Size int64
}

// List returns every object whose key starts with prefix in the server's
// bucket, in key order (ListObjectsV2, all pages). Tests use it to see what
// a process wrote to the store, independently of walfs's own store code.
func (s *Server) List(t testing.TB, prefix string) []Object {
	t.Helper()
	var all []Object
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		body := s.get(t, "/"+s.Bucket, q)
		var page struct {
			Contents []struct {
				Key  string `xml:"Key"`
				ETag string `xml:"ETag"`
				Size int64  `xml:"Size"`
			} `xml:"Contents"`
			IsTruncated           bool   `xml:"IsTruncated"`
			NextContinuationToken string `xml:"NextContinuationToken"`
		}
		if err := xml.Unmarshal(body, &page); err != nil {
			t.Fatalf("list %s in %s: %v\n%s", prefix, s.Name, err, body)
		}
		for _, c := range page.Contents {
			all = append(all, Object{Key: c.Key, ETag: c.ETag, Size: c.Size})
		}
		if !page.IsTruncated || page.NextContinuationToken == "" {
			return all
		}
		token = page.NextContinuationToken
	}
}

// Get returns the content of the object at key in the server's bucket.
func (s *Server) Get(t testing.TB, key string) []byte {
	t.Helper()
	return s.get(t, "/"+s.Bucket+"/"+key, nil)
}

// get sends a signed GET and returns the body of a 200 answer.
func (s *Server) get(t testing.TB, path string, q url.Values) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	signV4(req, s.AccessKey, s.SecretKey, s.Region, time.Now())
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, s.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, s.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s from %s: %s", path, s.Name, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body))
	}
	return body
}
