package sources

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestUpload puts a file under an S3 prefix, as a run does with its
// results file, and reads it back from the real server.
func TestUpload(t *testing.T) {
	f := newS3Fixture(t)
	cfg := f.config(Config{}).S3
	body := "key,order,state\n12345/A-1,A-1,accepted\n"
	url := f.location("results/run-1.csv")
	if err := Upload(t.Context(), cfg, url, strings.NewReader(body)); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	out, err := f.srv.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String("results/run-1.csv")})
	if err != nil {
		t.Fatalf("get the uploaded object: %v", err)
	}
	defer out.Body.Close()
	got, _ := io.ReadAll(out.Body)
	if string(got) != body {
		t.Fatalf("uploaded %q, read back %q", body, got)
	}

	for _, bad := range []string{f.location("results/"), "s3://", "/tmp/x.csv"} {
		if err := Upload(t.Context(), cfg, bad, bytes.NewReader(nil)); err == nil {
			t.Errorf("Upload(%q) succeeded, want an error", bad)
		}
	}
	wrong := cfg
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	err = Upload(t.Context(), wrong, f.location("results/run-2.csv"), strings.NewReader(body))
	if err == nil || !strings.Contains(err.Error(), "access denied") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("with a wrong secret: err = %v, want a clear access-denied error without the secret", err)
	}
}
