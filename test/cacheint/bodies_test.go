package cacheint

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/test/emulator"
)

// closeCounter counts the connections the client itself closes.
type closeCounter struct {
	net.Conn
	closes *atomic.Int64
}

func (c closeCounter) Close() error {
	c.closes.Add(1)
	return c.Conn.Close()
}

// The client the cache builds read listing pages that failed now and then
// with "use of closed network connection" although the emulator answered
// 200: the SDK closed the request's body stream once the answer arrived,
// while net/http's writer still read it to see its end, and the failed read
// made the transport close the connection under the answer (SDK issue 2737).
// With request bodies buffered, 200 pages of 100 secrets read without a
// retry (none allowed here), and the client closes no connection.
func TestClientReadsLargeAnswersWithoutClosingConnections(t *testing.T) {
	emu := emulator.New()
	srv, err := emulator.Start(emu, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for i := range 1000 {
		v := fmt.Sprintf(`{"user":"u%04d"}`, i)
		if _, err := emu.CreateSecret(emulator.Secret{Name: fmt.Sprintf("many/s%04d", i), SecretString: &v}); err != nil {
			t.Fatal(err)
		}
	}
	var closes atomic.Int64
	dialer := &net.Dialer{}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return closeCounter{Conn: c, closes: &closes}, nil
		}
	})
	sm := cache.NewClientFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", "")}, "test", func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL())
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = httpClient
	})
	pages := 0
	for range 20 {
		p := secretsmanager.NewListSecretsPaginator(sm, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(100)})
		for p.HasMorePages() {
			if _, err := p.NextPage(context.Background()); err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			pages++
		}
	}
	if n := closes.Load(); n != 0 {
		t.Fatalf("the client closed %d connections while reading %d pages, want none", n, pages)
	}
}
