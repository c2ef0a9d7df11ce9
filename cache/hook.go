package cache

// Hook transforms what the cache stores and what it reads back, for example
// to keep values encrypted in memory.
//
// Put is called once per successful fetch with the SDK's answer: a
// *secretsmanager.DescribeSecretOutput for a secret's metadata and a
// *secretsmanager.GetSecretValueOutput for a version's value. What it returns
// is stored. Get is called on every read of a stored answer, with what Put
// returned, and must give back an answer of the type Put received. Get is
// never called when nothing is stored.
//
// The cache calls a Hook from several goroutines at once.
type Hook interface {
	Put(answer any) any
	Get(stored any) any
}
