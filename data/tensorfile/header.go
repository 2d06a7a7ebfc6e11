package tensorfile

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// duplicateKey returns the first name that occurs twice at the top level of
// a safetensors JSON header. The safetensors parser decodes the header into
// a map, so a repeated name silently keeps only the last entry, and the gap
// its first entry leaves in the data offsets is then reported under the
// next tensor's name. Checking first names the tensor that is really wrong.
// A header that is not a JSON object returns "" (the parser reports it).
func duplicateKey(header []byte) string {
	dec := json.NewDecoder(bytes.NewReader(header))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		key, ok := t.(string)
		if !ok {
			return ""
		}
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// checkHeader reports header problems the safetensors parser misnames.
func checkHeader(path string, header []byte) error {
	if k := duplicateKey(header); k != "" {
		if k == "__metadata__" {
			return fmt.Errorf("%s: corrupt safetensors header: __metadata__ appears more than once", path)
		}
		return fmt.Errorf("%s: corrupt safetensors header: tensor %q appears more than once", path, k)
	}
	return nil
}
