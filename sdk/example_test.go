package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/deoss/deoss/sdk"
)

// Upload a file, read a range of it back, and delete it. The gateway and the
// key come from `deoss dev` (its client.yaml names both).
func Example() {
	ctx := context.Background()
	c, err := sdk.New("http://127.0.0.1:8080", os.ExpandEnv("$HOME/.deoss/dev/user.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fid, err := c.Upload(ctx, "photo.jpg", sdk.UploadOptions{Territory: "home", Concurrency: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Bytes 1000 to 1999.
	if _, err := c.Download(ctx, fid, os.Stdout, 1000, 1000, sdk.DownloadOptions{}); err != nil {
		fmt.Println(err)
	}
	if err := c.Delete(ctx, fid); err != nil {
		fmt.Println(err)
	}
}

// Errors carry the gateway's status and code, and match the sentinels.
func ExampleError() {
	var err error = &sdk.Error{Status: 404, Code: "no_file", Msg: "no file"}
	fmt.Println(errors.Is(err, sdk.ErrNotFound))
	// Output: true
}
