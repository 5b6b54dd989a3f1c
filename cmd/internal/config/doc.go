// Package config owns the walfs YAML config file (walfs mount --config
// walfs.yml): reading it, expanding environment variables, checking every
// key and value, and turning it into a Config the command wires up.
//
// $VAR and ${VAR} are expanded in every value ($$ is a literal $); an unset
// variable is an error, one set to "" is not. Expansion is applied to each
// parsed value, not to the raw text, so a value from the environment can
// never change the YAML structure (see expand).
//
// Keys are kebab-case and share their names and meaning with Litestream's
// where the two overlap, so a Litestream user can paste a replica block.
// Every error is one line that names the file and line, says what is wrong
// and how to fix it, and matches one of the package's sentinel errors (or
// fs.ErrNotExist and friends for an unreadable file).
//
// The package checks the file on its own terms: syntax, known keys, value
// types and ranges, and contradictions within the file. It does not decide
// what a mount needs in total (a replica may come from a flag), does not
// parse replica URLs beyond their scheme (s3backend does), touches no disk
// apart from reading the file, and imports no walfs package. It must never
// put a secret value into an error, a log line or String output, and must
// never panic on any input; FuzzParse holds that line.
package config
