package config

import "testing"

func TestExpand(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
		wantOff int
	}{
		{in: "", want: ""},
		{in: "plain", want: "plain"},
		{in: "$HOME", want: "/home/walfs"},
		{in: "${HOME}", want: "/home/walfs"},
		{in: "$HOME/x", want: "/home/walfs/x"},
		{in: "${HOME}x", want: "/home/walfsx"},
		{in: "$BUCKET$N", want: "my-bucket8"},
		{in: "a${EMPTY}b$EMPTY", want: "ab"},
		{in: "$$", want: "$"},
		{in: "$$$$", want: "$$"},
		{in: "$$HOME", want: "$HOME"},
		{in: "$$$HOME", want: "$/home/walfs"},
		{in: "${HOME}$$", want: "/home/walfs$"},
		{in: "$", want: "$"},
		{in: "a$", want: "a$"},
		{in: "$1", want: "$1"},
		{in: "$ x", want: "$ x"},
		{in: "$-", want: "$-"},
		{in: "$/", want: "$/"},
		{in: "pa$5word", want: "pa$5word"},
		{in: "$WEIRD", want: "a #b: *c !d '\"{["},
		{in: "$HOME_DIR", wantErr: "environment variable HOME_DIR is not set (export it, or write $$ for a literal $)", wantOff: 0},
		{in: "ab${NOPE}", wantErr: "environment variable NOPE is not set (export it, or write $$ for a literal $)", wantOff: 2},
		{in: "x $NOPE y", wantErr: "environment variable NOPE is not set (export it, or write $$ for a literal $)", wantOff: 2},
		{in: "${", wantErr: `"${" has no closing "}" (write ${NAME}, or $$ for a literal $)`},
		{in: "ab${HOME", wantErr: `"${" has no closing "}" (write ${NAME}, or $$ for a literal $)`, wantOff: 2},
		{in: "${}", wantErr: `empty variable reference "${}" (write ${NAME}, or $$ for a literal $)`},
		{in: "${A B}", wantErr: `invalid variable name in "${...}" (names are letters, digits and _, not starting with a digit; write $$ for a literal $)`},
		{in: "${9}", wantErr: `invalid variable name in "${...}" (names are letters, digits and _, not starting with a digit; write $$ for a literal $)`},
		{in: "${HOME:-/root}", wantErr: `shell default syntax such as "${NAME:-default}" is not supported (write ${NAME} and set the variable)`},
		{in: "${HOME?}", wantErr: `shell default syntax such as "${NAME:-default}" is not supported (write ${NAME} and set the variable)`},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, testEnv)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("expand(%q): got error %q, want %q", tt.in, err.msg, tt.want)
		case tt.wantErr == "" && got != tt.want:
			t.Errorf("expand(%q): got %q, want %q", tt.in, got, tt.want)
		case tt.wantErr != "" && err == nil:
			t.Errorf("expand(%q): got %q, want error %q", tt.in, got, tt.wantErr)
		case tt.wantErr != "" && (err.msg != tt.wantErr || err.off != tt.wantOff):
			t.Errorf("expand(%q): got error %q at %d, want %q at %d", tt.in, err.msg, err.off, tt.wantErr, tt.wantOff)
		}
	}
}
