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
		{"/srv/a", mountEntry{dir: "/srv/a", fstype: "fuse.secretsfs", source: "secretsfs", dev: "0:40", root: "/"}, true}, // the later mount is on top
		{"/srv/with space", mountEntry{dir: "/srv/with space", fstype: "fuse.secretsfs", source: `my\src`, dev: "0:41", root: "/"}, true},
		{"/srv/b", mountEntry{dir: "/srv/b", fstype: "tmpfs", source: "tmpfs", dev: "0:42", root: "/"}, true},
		{"/srv", mountEntry{}, false},
	} {
		got, ok := topMount(info, tc.dir)
		if got != tc.want || ok != tc.ok {
			t.Errorf("topMount(%s) = %+v, %v; want %+v, %v", tc.dir, got, ok, tc.want, tc.ok)
		}
	}
}

// topMountsBelow gives the mount on top of each mount point below a
// directory, with the root of binds, and nothing at or above it.
func TestTopMountsBelow(t *testing.T) {
	info := []byte(`22 1 0:21 / /pods rw shared:12 - ext4 /dev/sda1 rw
36 22 0:40 /db /pods/u/volume-subpaths/v/app/0 ro - fuse.secretsfs csi.secretsfs.io ro
37 22 0:41 / /pods/u/volume-subpaths/v rw - tmpfs tmpfs rw
38 36 0:50 /db /pods/u/volume-subpaths/v/app/0 ro - fuse.secretsfs csi.secretsfs.io ro
39 22 0:51 /with\040space /pods/u/volume-subpaths/v/app/1 ro - fuse.secretsfs csi.secretsfs.io ro
40 22 0:52 / /pods/u/volume-subpaths/vv/app/0 ro - fuse.secretsfs csi.secretsfs.io ro
`)
	got := topMountsBelow(info, "/pods/u/volume-subpaths/v/")
	want := []mountEntry{
		{dir: "/pods/u/volume-subpaths/v/app/0", fstype: "fuse.secretsfs", source: "csi.secretsfs.io", dev: "0:50", root: "/db"},
		{dir: "/pods/u/volume-subpaths/v/app/1", fstype: "fuse.secretsfs", source: "csi.secretsfs.io", dev: "0:51", root: "/with space"},
	}
	if len(got) != len(want) {
		t.Fatalf("topMountsBelow = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("topMountsBelow[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
