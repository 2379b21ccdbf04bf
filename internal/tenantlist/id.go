package tenantlist

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
)

const urnPrefix = "urn:uuid:"

// ParseID parses one tenant ID. It accepts the canonical form
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in any case, optionally wrapped in braces
// {…} or prefixed with urn:uuid: (any case), with surrounding whitespace.
//
// It rejects everything else, notably the 32-hex-digit form without dashes that
// uuid.Parse accepts: that is also the shape of an MD5 sum or an unrelated ID
// column, while wazo-auth, PostgreSQL's uuid::text and Python's str(UUID) all
// print dashes, so accepting it would only let a wrong file or column through. It
// also rejects mismatched braces, which uuid.Parse does not check.
//
// The nil UUID parses: whether it may be deleted is for the policy to decide.
// Errors are *ParseError naming the input.
func ParseID(s string) (uuid.UUID, error) {
	id, err := parseID(s)
	if err != nil {
		return uuid.Nil, &ParseError{Input: echo(s), Err: err}
	}
	return id, nil
}

func parseID(s string) (uuid.UUID, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return uuid.Nil, fmt.Errorf("%w: empty", ErrNotUUID)
	case len(t) >= len(urnPrefix) && strings.EqualFold(t[:len(urnPrefix)], urnPrefix):
		t = t[len(urnPrefix):]
	case t[0] == '{':
		if len(t) < 2 || t[len(t)-1] != '}' {
			return uuid.Nil, fmt.Errorf("%w: unbalanced brace", ErrNotUUID)
		}
		t = t[1 : len(t)-1]
	}
	if len(t) == 32 && isHex(t) {
		return uuid.Nil, fmt.Errorf("%w: 32 hex digits without dashes are not accepted", ErrNotUUID)
	}
	// uuid.Parse also takes other lengths; 36 leaves it only the canonical form,
	// whose dashes and hex digits it checks.
	if len(t) != 36 {
		return uuid.Nil, ErrNotUUID
	}
	id, err := uuid.Parse(t)
	if err != nil {
		return uuid.Nil, ErrNotUUID
	}
	return id, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
