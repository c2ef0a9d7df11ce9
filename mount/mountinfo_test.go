package mount

import "testing"

func TestTopMount(t *testing.T) {
	info := []byte(`22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw
36 35 98:0 / /srv/a rw,noatime master:1 - ext4 /dev/sda1 rw
40 36 0:40 / /srv/a rw,nosuid,nodev,relatime - fuse.secretsfs secretsfs ro,user_id=0
41 22 0:41 / /srv/with\040space rw - fuse.secretsfs my\134src rw
42 22 0:42 / /srv/b rw shared:3 master:1 - tmpfs tmpfs rw
`)
	for _, tc := range []struct {
		dir  string
		want mountEntry
		ok   bool
	}{
		{"/srv/a", mountEntry{dir: "/srv/a", fstype: "fuse.secretsfs", source: "secretsfs", dev: "0:40"}, true}, // the later mount is on top
		{"/srv/with space", mountEntry{dir: "/srv/with space", fstype: "fuse.secretsfs", source: `my\src`, dev: "0:41"}, true},
		{"/srv/b", mountEntry{dir: "/srv/b", fstype: "tmpfs", source: "tmpfs", dev: "0:42"}, true},
		{"/srv", mountEntry{}, false},
	} {
		got, ok := topMount(info, tc.dir)
		if got != tc.want || ok != tc.ok {
			t.Errorf("topMount(%s) = %+v, %v; want %+v, %v", tc.dir, got, ok, tc.want, tc.ok)
		}
	}
}
