package place

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ownerOf returns the ids of fi's owner and group (Keep where the system does not say).
func ownerOf(fi fs.FileInfo) Owner {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Keep
	}
	return Owner{UID: int(st.Uid), GID: int(st.Gid)}
}

// OwnerOf returns the owner and group of fi, with their names where this host
// knows them (names are looked up once per id by n; n may be nil for ids only).
func OwnerOf(fi fs.FileInfo, n *Names) Owner {
	o := ownerOf(fi)
	if n != nil && !o.IsKeep() {
		o.User, o.Group = n.User(o.UID), n.Group(o.GID)
	}
	return o
}

// Names looks up user and group names by id, each once. Safe for concurrent use.
type Names struct {
	mu     sync.Mutex
	users  map[int]string
	groups map[int]string
}

// User returns uid's name, or "" when this host has none.
func (n *Names) User(uid int) string {
	return n.lookup(&n.users, uid, func(id string) (string, error) {
		u, err := user.LookupId(id)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

// Group returns gid's name, or "" when this host has none.
func (n *Names) Group(gid int) string {
	return n.lookup(&n.groups, gid, func(id string) (string, error) {
		g, err := user.LookupGroupId(id)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

func (n *Names) lookup(m *map[int]string, id int, f func(string) (string, error)) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if *m == nil {
		*m = map[int]string{}
	}
	if name, ok := (*m)[id]; ok {
		return name
	}
	name, err := f(strconv.Itoa(id))
	if err != nil {
		name = ""
	}
	(*m)[id] = name
	return name
}

// ParseOwner reads "USER:GROUP", each a name known to this host or a numeric id.
func ParseOwner(s string) (Owner, error) {
	u, g, ok := strings.Cut(s, ":")
	if !ok || u == "" || g == "" {
		return Owner{}, fmt.Errorf("owner %q: want USER:GROUP (names or numeric ids)", s)
	}
	o := Owner{User: u, Group: g}
	if id, err := strconv.Atoi(u); err == nil && id >= 0 {
		o.UID, o.User = id, ""
	} else {
		usr, err := user.Lookup(u)
		if err != nil {
			return Owner{}, fmt.Errorf("owner %q: user %s: %w", s, u, err)
		}
		if o.UID, err = strconv.Atoi(usr.Uid); err != nil {
			return Owner{}, fmt.Errorf("owner %q: user %s has uid %q", s, u, usr.Uid)
		}
	}
	if id, err := strconv.Atoi(g); err == nil && id >= 0 {
		o.GID, o.Group = id, ""
	} else {
		grp, err := user.LookupGroup(g)
		if err != nil {
			return Owner{}, fmt.Errorf("owner %q: group %s: %w", s, g, err)
		}
		if o.GID, err = strconv.Atoi(grp.Gid); err != nil {
			return Owner{}, fmt.Errorf("owner %q: group %s has gid %q", s, g, grp.Gid)
		}
	}
	return o, nil
}

// CanChown reports whether this process may give files to another owner.
func CanChown() bool { return canChown() }

// canChown asks once: a restore asks for every file, and the answer does not change.
var canChown = sync.OnceValue(func() bool { return os.Geteuid() == 0 })
