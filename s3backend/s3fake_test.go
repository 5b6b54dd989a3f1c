package s3backend_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeS3 is a minimal in-memory S3 behind an httptest TLS server that
// records what each request looked like on the wire. It checks nothing about
// signatures: wire tests assert on the recorded requests instead.
type fakeS3 struct {
	srv    *httptest.Server
	bucket string
	caFile string

	mu       sync.Mutex
	objects  map[string]fakeObject
	uploads  map[string]map[int][]byte
	requests []wireRequest

	inFlightParts atomic.Int32
	maxParts      atomic.Int32

	// conditional is how PUT treats If-None-Match: *: "" ignores it (as
	// s3rver does), "honour" answers 412 for an existing key, "501"
	// answers NotImplemented (as Backblaze B2 does).
	conditional string
}

type fakeObject struct {
	etag     string
	data     []byte
	meta     http.Header
	modified time.Time
}

// wireRequest is what a request carried, as the server saw it.
type wireRequest struct {
	Op         string // PutObject, UploadPart, ... (derived from method and query)
	Method     string
	Host       string
	Path       string
	Query      string
	Header     http.Header
	VirtualHst bool // bucket in the host name
	Body       []byte
}

func newFakeS3(t *testing.T, bucket string) *fakeS3 {
	f := &fakeS3{bucket: bucket, objects: map[string]fakeObject{}, uploads: map[string]map[int][]byte{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS rejections are expected in some tests
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caFile, pemCert(f.srv), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// dialAll connects every address to the fake, so any host name works.
func (f *fakeS3) dialAll(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, f.srv.Listener.Addr().String())
}

func (f *fakeS3) recorded() []wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeS3) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		if body, err = decodeAWSChunked(body); err != nil {
			s3Error(w, http.StatusBadRequest, "IncompleteBody", err.Error())
			return
		}
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	virtual := strings.HasPrefix(host, f.bucket+".")
	path := strings.TrimPrefix(r.URL.Path, "/")
	if !virtual {
		b, rest, _ := strings.Cut(path, "/")
		if b != f.bucket {
			s3Error(w, http.StatusNotFound, "NoSuchBucket", "no bucket "+b)
			return
		}
		path = rest
	}
	key := path
	q := r.URL.Query()
	req := wireRequest{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), VirtualHst: virtual, Body: body}

	switch {
	case r.Method == http.MethodPut && q.Has("partNumber"):
		req.Op = "UploadPart"
		f.record(req)
		n := f.inFlightParts.Add(1)
		for {
			m := f.maxParts.Load()
			if n <= m || f.maxParts.CompareAndSwap(m, n) {
				break
			}
		}
		// Hold the part briefly so concurrent parts overlap observably.
		time.Sleep(20 * time.Millisecond)
		f.inFlightParts.Add(-1)
		num, _ := strconv.Atoi(q.Get("partNumber"))
		f.mu.Lock()
		f.uploads[q.Get("uploadId")][num] = body
		f.mu.Unlock()
		w.Header().Set("ETag", fmt.Sprintf(`"part%d"`, num))
	case r.Method == http.MethodPut:
		req.Op = "PutObject"
		f.record(req)
		if status, code := f.precondition(key, r.Header); status != 0 {
			s3Error(w, status, code, "the condition did not hold")
			return
		}
		etag := fmt.Sprintf(`"%x"`, md5.Sum(body))
		f.mu.Lock()
		f.objects[key] = fakeObject{etag: etag, data: body, meta: metaHeaders(r.Header), modified: time.Now()}
		f.mu.Unlock()
		w.Header().Set("ETag", etag)
	case r.Method == http.MethodPost && q.Has("uploads"):
		req.Op = "CreateMultipartUpload"
		f.record(req)
		id := fmt.Sprintf("upload-%d", time.Now().UnixNano())
		f.mu.Lock()
		f.uploads[id] = map[int][]byte{}
		f.objects["\x00meta/"+id] = fakeObject{meta: metaHeaders(r.Header)}
		f.mu.Unlock()
		fmt.Fprintf(w, `<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, f.bucket, key, id)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		req.Op = "CompleteMultipartUpload"
		f.record(req)
		id := q.Get("uploadId")
		f.mu.Lock()
		parts := f.uploads[id]
		nums := make([]int, 0, len(parts))
		for n := range parts {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		var data []byte
		for _, n := range nums {
			data = append(data, parts[n]...)
		}
		meta := f.objects["\x00meta/"+id].meta
		delete(f.objects, "\x00meta/"+id)
		delete(f.uploads, id)
		f.objects[key] = fakeObject{data: data, meta: meta, modified: time.Now()}
		f.mu.Unlock()
		fmt.Fprintf(w, `<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><ETag>"done"</ETag></CompleteMultipartUploadResult>`, f.bucket, key)
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		req.Op = "AbortMultipartUpload"
		f.record(req)
		f.mu.Lock()
		delete(f.uploads, q.Get("uploadId"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && q.Has("delete"):
		req.Op = "DeleteObjects"
		f.record(req)
		var del struct {
			Objects []struct{ Key string } `xml:"Object"`
		}
		if err := xml.Unmarshal(body, &del); err != nil {
			s3Error(w, http.StatusBadRequest, "MalformedXML", err.Error())
			return
		}
		f.mu.Lock()
		for _, o := range del.Objects {
			delete(f.objects, o.Key)
		}
		f.mu.Unlock()
		fmt.Fprint(w, `<DeleteResult></DeleteResult>`)
	case r.Method == http.MethodDelete:
		req.Op = "DeleteObject"
		f.record(req)
		f.mu.Lock()
		delete(f.objects, key)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && key == "" && q.Get("list-type") == "2":
		req.Op = "ListObjectsV2"
		f.record(req)
		f.list(w, q.Get("prefix"), q.Get("delimiter"))
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		req.Op = map[string]string{http.MethodGet: "GetObject", http.MethodHead: "HeadObject"}[r.Method]
		f.record(req)
		f.mu.Lock()
		obj, ok := f.objects[key]
		f.mu.Unlock()
		if !ok {
			s3Error(w, http.StatusNotFound, "NoSuchKey", "no such key")
			return
		}
		for k, v := range obj.meta {
			w.Header()[k] = v
		}
		w.Header().Set("Last-Modified", obj.modified.UTC().Format(http.TimeFormat))
		if obj.etag != "" {
			w.Header().Set("ETag", obj.etag)
		}
		data := obj.data
		if rg := r.Header.Get("Range"); rg != "" {
			off, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			if off >= len(data) {
				s3Error(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "bad range")
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(data)-1, len(data)))
			w.Header().Set("Content-Length", strconv.Itoa(len(data)-off))
			w.WriteHeader(http.StatusPartialContent)
			if r.Method == http.MethodGet {
				w.Write(data[off:])
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		if r.Method == http.MethodGet {
			w.Write(data)
		}
	default:
		req.Op = "Unknown"
		f.record(req)
		s3Error(w, http.StatusNotImplemented, "NotImplemented", r.Method+" "+r.URL.String())
	}
}

// precondition applies If-None-Match: * and If-Match to a PUT of key as
// f.conditional says, and returns the error status and code, or 0.
func (f *fakeS3) precondition(key string, h http.Header) (int, string) {
	if h.Get("If-None-Match") == "" && h.Get("If-Match") == "" {
		return 0, ""
	}
	f.mu.Lock()
	obj, exists := f.objects[key]
	f.mu.Unlock()
	switch f.conditional {
	case "501":
		return http.StatusNotImplemented, "NotImplemented"
	case "honour":
		if h.Get("If-None-Match") == "*" && exists {
			return http.StatusPreconditionFailed, "PreconditionFailed"
		}
		if m := h.Get("If-Match"); m != "" && !exists {
			return http.StatusNotFound, "NoSuchKey"
		} else if m != "" && m != obj.etag {
			return http.StatusPreconditionFailed, "PreconditionFailed"
		}
	}
	return 0, ""
}

func (f *fakeS3) record(r wireRequest) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.mu.Unlock()
}

func (f *fakeS3) list(w http.ResponseWriter, prefix, delim string) {
	f.mu.Lock()
	var keys []string
	for k := range f.objects {
		if strings.HasPrefix(k, prefix) && !strings.HasPrefix(k, "\x00") {
			rest := strings.TrimPrefix(k, prefix)
			if delim != "" && strings.Contains(rest, delim) {
				continue // common prefixes are not needed by these tests
			}
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, `<ListBucketResult><Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>`, f.bucket, prefix, len(keys))
	for _, k := range keys {
		o := f.objects[k]
		fmt.Fprintf(&b, `<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>"x"</ETag><Size>%d</Size></Contents>`,
			k, o.modified.UTC().Format("2006-01-02T15:04:05.000Z"), len(o.data))
	}
	b.WriteString(`</ListBucketResult>`)
	f.mu.Unlock()
	io.WriteString(w, b.String())
}

func metaHeaders(h http.Header) http.Header {
	m := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") {
			m[k] = v
		}
	}
	return m
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

// decodeAWSChunked strips aws-chunked framing ("<hex size>[;ext]\r\n<data>\r\n"
// ... "0\r\n<trailers>\r\n").
func decodeAWSChunked(b []byte) ([]byte, error) {
	var out []byte
	for {
		line, rest, ok := bytes.Cut(b, []byte("\r\n"))
		if !ok {
			return nil, fmt.Errorf("aws-chunked: no chunk header")
		}
		sizeHex, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(sizeHex), 16, 64)
		if err != nil || n < 0 || int64(len(rest)) < n {
			return nil, fmt.Errorf("aws-chunked: bad chunk size %q", line)
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, rest[:n]...)
		b = bytes.TrimPrefix(rest[n:], []byte("\r\n"))
	}
}
