package seal

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"

	"filippo.io/age"
)

// The session and the opener hold key material (the session key, the cache of
// session keys opened): no fmt verb prints it.
func TestSessionAndOpenerNeverPrint(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSession(id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	o := newOpener(id)
	o.sessions["x"] = s.key
	for _, v := range []any{s, *s, o} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			out := fmt.Sprintf(verb, v)
			if bytes.Contains([]byte(out), []byte(hex.EncodeToString(s.key))) || bytes.Contains([]byte(out), s.key) ||
				bytes.Contains([]byte(out), []byte(fmt.Sprint(s.key)[1:20])) || bytes.Contains([]byte(out), []byte(id.String())) {
				t.Errorf("%s of %T prints key material: %s", verb, v, out)
			}
		}
	}
}
