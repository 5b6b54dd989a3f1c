package config

// Test fixtures shared by the tests in this package.

// testSecret is the value of $SECRET in testEnv; no error message or
// String output may ever contain it.
const testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

// testEnv is the environment Parse sees in tests (parse takes the lookup
// as a parameter so tests never touch the process environment).
var testEnv = envOf(map[string]string{
	"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
	"SECRET":            testSecret,
	"WEIRD":             "a #b: *c !d '\"{[",
	"EMPTY":             "",
	"BUCKET":            "my-bucket",
	"N":                 "8",
	"MODE":              "SYNC",
	"HOME":              "/home/walfs",
	"MULTI":             "line1\nline2",
})

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func ptr[T any](v T) *T { return &v }

// set builds a Config.Set map.
func set(keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}
