package fs

// KeyFiles returns the files the top-level keys of a JSON secret give in
// the default layout, name to content, by the same rules the mount shows
// them (strings without quotes, other values as compact JSON, keys that are
// not valid file names left out); nil when data is not a JSON object. The
// daemon uses it to tell which key files a new version changed.
func KeyFiles(data []byte) map[string][]byte {
	keys, _ := jsonKeys(data)
	return keys
}
