package cache_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
)

// A program builds the cache once, with cache.NewDefaultClient(ctx,
// "myapp/1.0") as its client, and reads through it. Here a fake client
// stands in for Secrets Manager.
func Example() {
	client := cachetest.NewClient()
	client.PutString("prod/db", `{"username":"app","password":"example"}`)

	c, err := cache.New(client, cache.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()

	s, err := c.GetSecretString(ctx, "prod/db")
	fmt.Println(len(s), err)

	creds, err := cache.GetSecretJSON[struct {
		Username string `json:"username"`
	}](ctx, c, "prod/db")
	fmt.Println(creds.Username, err)

	_, err = c.GetSecretString(ctx, "prod/missing")
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// 39 <nil>
	// app <nil>
	// true
}
