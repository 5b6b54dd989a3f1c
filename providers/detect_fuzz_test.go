package providers

import "testing"

func FuzzDetect(f *testing.F) {
	for _, s := range []string{"", "s3.amazonaws.com", "https://x.eu.r2.cloudflarestorage.com:443/p", "[::1", "%zz", "http://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, endpoint string) {
		p := Detect(endpoint)
		if p.Name == "" || p.MinPartSize.Value < 5*MiB {
			t.Fatalf("Detect(%q) returned incomplete profile %v", endpoint, p)
		}
	})
}
