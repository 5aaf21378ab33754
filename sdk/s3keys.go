package sdk

import (
	"context"
	"net/url"
	"time"
)

// S3Key is an S3 credential the gateway issued to the client's account;
// SecretKey is only in the answer that created it.
type S3Key struct {
	AccessKey string    `json:"access_key"`
	SecretKey string    `json:"secret_key,omitempty"`
	Owner     string    `json:"owner"`
	Territory string    `json:"territory"`
	Created   time.Time `json:"created"`
}

// CreateS3Key issues an S3 credential whose buckets go to territory when
// their CreateBucket names none.
func (c *Client) CreateS3Key(ctx context.Context, territory string) (*S3Key, error) {
	var k S3Key
	return &k, c.call(ctx, "POST", "/s3/keys", map[string]string{"territory": territory}, &k, nil)
}

// S3Keys lists the account's S3 credentials at the gateway (no secrets).
func (c *Client) S3Keys(ctx context.Context) ([]S3Key, error) {
	var out []S3Key
	return out, c.call(ctx, "GET", "/s3/keys", nil, &out, nil)
}

// RevokeS3Key revokes one of the account's S3 credentials, at once.
func (c *Client) RevokeS3Key(ctx context.Context, accessKey string) error {
	return c.call(ctx, "DELETE", "/s3/keys/"+url.PathEscape(accessKey), nil, nil, nil)
}
