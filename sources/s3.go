package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"convpipe/pipeline"
)

const (
	// readRetries is how many times in a row a read may fail without
	// progress before the object is given up. The SDK retries each request
	// itself as well; these retries resume a body cut mid-way.
	readRetries = 5
	// retryBase and retryMax bound the wait between read retries.
	retryBase = 100 * time.Millisecond
	retryMax  = 5 * time.Second
)

// s3Store reads objects under an s3:// location.
type s3Store struct {
	set    *settings
	loc    *s3Location
	client *s3.Client
}

func newS3Store(ctx context.Context, set *settings) (*s3Store, error) {
	client, err := newS3Client(ctx, set.cfg.S3)
	if err != nil {
		return nil, err
	}
	return &s3Store{set: set, loc: set.s3, client: client}, nil
}

// newS3Client returns a client for c, with the AWS SDK's standard
// credential chain.
func newS3Client(ctx context.Context, c S3Config) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if c.Endpoint == "" {
			return nil, errors.New("s3: no region: set source.s3.region, AWS_REGION or a profile's region")
		}
		awsCfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		// Ranged and S3-compatible responses often carry no checksum; the
		// SDK would print a line to stderr for each.
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// Upload writes body to the S3 object url ("s3://bucket/key"), with the
// client settings of c (the source's s3 section). It is how a run puts its
// results file under an S3 prefix.
func Upload(ctx context.Context, c S3Config, url string, body io.ReadSeeker) error {
	bucket, key, err := splitS3URL(url)
	if err != nil {
		return err
	}
	if key == "" || strings.HasSuffix(key, "/") {
		return fmt.Errorf("s3: upload %s: the URL names no object", url)
	}
	client, err := newS3Client(ctx, c)
	if err != nil {
		return err
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body}); err != nil {
		return fmt.Errorf("s3: upload %s: %w", url, explain(err))
	}
	return nil
}

func s3URL(bucket, key string) string { return "s3://" + bucket + "/" + key }

// splitS3URL splits "s3://bucket/key".
func splitS3URL(u string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if ok {
		bucket, key, ok = strings.Cut(rest, "/")
	}
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("%q is not an s3://bucket/key URL", u)
	}
	return bucket, key, nil
}

func (s *s3Store) list(ctx context.Context) ([]pipeline.Object, error) {
	loc := s.loc
	if loc.glob == "" && loc.prefix != "" && !strings.HasSuffix(loc.prefix, "/") {
		// One object, or a folder named without its slash.
		objs, err := s.listPrefix(ctx, loc.prefix, func(key string) bool {
			rel, ok := strings.CutPrefix(key, loc.prefix+"/")
			return key == loc.prefix || ok && s.set.selectedInFolder(rel)
		})
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if o.Key == s3URL(loc.bucket, loc.prefix) {
				return []pipeline.Object{o}, nil
			}
		}
		return objs, nil
	}
	return s.listPrefix(ctx, loc.prefix, func(key string) bool {
		if loc.glob != "" {
			ok, _ := path.Match(loc.glob, key)
			return ok && selectedByGlob(loc.glob, key)
		}
		return s.set.selectedInFolder(strings.TrimPrefix(key, loc.prefix))
	})
}

// listPrefix lists, page by page, the keys under prefix that keep selects.
func (s *s3Store) listPrefix(ctx context.Context, prefix string, keep func(string) bool) ([]pipeline.Object, error) {
	var objs []pipeline.Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.loc.bucket),
		Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %s: %w", s3URL(s.loc.bucket, prefix), explain(err))
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, "/") || !keep(key) {
				continue
			}
			objs = append(objs, pipeline.Object{
				Key:     s3URL(s.loc.bucket, key),
				ETag:    strings.Trim(aws.ToString(o.ETag), `"`),
				Size:    aws.ToInt64(o.Size),
				ModTime: aws.ToTime(o.LastModified).UTC(),
			})
		}
	}
	return objs, nil
}

// explain adds a hint to the errors a user can act on.
func explain(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "InvalidToken", "Forbidden":
			return fmt.Errorf("access denied, check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the IAM role) and the bucket policy: %w", err)
		case "NoSuchBucket":
			return fmt.Errorf("no such bucket: %w", err)
		}
	}
	return err
}

func (s *s3Store) open(ctx context.Context, obj pipeline.Object) (io.ReadCloser, error) {
	o, err := s.object(ctx, obj)
	if err != nil {
		return nil, err
	}
	r := &s3Stream{ctx: ctx, obj: o}
	if err := r.connect(); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *s3Store) openAt(ctx context.Context, obj pipeline.Object) (readerAtCloser, int64, error) {
	o, err := s.object(ctx, obj)
	if err != nil {
		return nil, 0, err
	}
	return &s3ReaderAt{ctx: ctx, obj: o}, o.size, nil
}

// s3Object is one object being read: its URL, bucket, key, ETag and size.
type s3Object struct {
	s                *s3Store
	url, bucket, key string
	etag             string
	size             int64
}

// object resolves obj; without an ETag it asks the store for the current
// ETag and size, so that every read is of one version.
func (s *s3Store) object(ctx context.Context, obj pipeline.Object) (*s3Object, error) {
	bucket, key, err := splitS3URL(obj.Key)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	o := &s3Object{s: s, url: obj.Key, bucket: bucket, key: key, etag: obj.ETag, size: obj.Size}
	if o.etag == "" {
		h, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return nil, fmt.Errorf("s3: head %s: %w", obj.Key, explain(err))
		}
		o.etag, o.size = strings.Trim(aws.ToString(h.ETag), `"`), aws.ToInt64(h.ContentLength)
	}
	return o, nil
}

// get requests bytes [off, end) of the object (end < 0: to its end), on
// condition that its ETag is still the listed one.
func (o *s3Object) get(ctx context.Context, off, end int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &o.bucket, Key: &o.key, IfMatch: aws.String(`"` + o.etag + `"`)}
	switch {
	case end >= 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, end-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := o.s.client.GetObject(ctx, in)
	if err != nil {
		if status(err) == http.StatusPreconditionFailed {
			return nil, fmt.Errorf("s3: get %s: %w", o.url, ErrChanged)
		}
		return nil, fmt.Errorf("s3: get %s: %w", o.url, explain(err))
	}
	if tag := strings.Trim(aws.ToString(out.ETag), `"`); tag != "" && tag != o.etag {
		out.Body.Close()
		return nil, fmt.Errorf("s3: get %s: %w (etag %s, listed as %s)", o.url, ErrChanged, tag, o.etag)
	}
	if in.Range != nil && !strings.HasPrefix(aws.ToString(out.ContentRange), fmt.Sprintf("bytes %d-", off)) {
		out.Body.Close()
		return nil, fmt.Errorf("s3: get %s: asked for %s, got range %q", o.url, *in.Range, aws.ToString(out.ContentRange))
	}
	return out.Body, nil
}

// status returns the HTTP status of a failed request, or 0.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// permanent reports whether a failed read must not be retried: the
// context ended, the object changed or is gone, access is denied.
func permanent(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrChanged) {
		return true
	}
	switch status(err) {
	case http.StatusNotFound, http.StatusForbidden, http.StatusUnauthorized, http.StatusBadRequest,
		http.StatusRequestedRangeNotSatisfiable:
		return true
	}
	return false
}

// wait sleeps before retry attempt n (1, 2, ...) with jittered exponential
// backoff, or returns early with the context's error.
func wait(ctx context.Context, n int) error {
	d := retryBase << (n - 1)
	if d > retryMax || d <= 0 {
		d = retryMax
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// s3Stream reads an object from start to end. When the body fails or ends
// early, it asks for the rest with a Range request on the same ETag and
// goes on, up to readRetries failures in a row without progress.
type s3Stream struct {
	ctx      context.Context
	obj      *s3Object
	body     io.ReadCloser
	off      int64
	failures int
	closed   bool
}

// connect requests the object from the current offset, retrying failures
// that may pass.
func (r *s3Stream) connect() error {
	for {
		body, err := r.obj.get(r.ctx, r.off, -1)
		if err == nil {
			r.body = body
			return nil
		}
		if permanent(r.ctx, err) {
			return err
		}
		if err := r.retry(err); err != nil {
			return err
		}
	}
}

// retry counts a failure and waits, or returns the error that ends the
// reading.
func (r *s3Stream) retry(cause error) error {
	r.failures++
	if r.failures > readRetries {
		return fmt.Errorf("s3: read %s at byte %d: giving up after %d attempts: %w", r.obj.url, r.off, r.failures, cause)
	}
	if err := wait(r.ctx, r.failures); err != nil {
		return fmt.Errorf("s3: read %s at byte %d: %w", r.obj.url, r.off, err)
	}
	return nil
}

// Read reads the next bytes of the object.
func (r *s3Stream) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("s3: read after close")
	}
	for {
		if r.off >= r.obj.size && r.body == nil {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.connect(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.failures = 0
		}
		if err == nil {
			return n, nil
		}
		r.body.Close()
		r.body = nil
		if errors.Is(err, io.EOF) {
			if r.off >= r.obj.size {
				return n, io.EOF
			}
			err = io.ErrUnexpectedEOF
		}
		if r.off > r.obj.size {
			return n, fmt.Errorf("s3: read %s: %w (more than its %d bytes)", r.obj.url, ErrChanged, r.obj.size)
		}
		if r.ctx.Err() != nil {
			return n, fmt.Errorf("s3: read %s: %w", r.obj.url, r.ctx.Err())
		}
		if n > 0 {
			return n, nil // the next Read resumes
		}
		if err := r.retry(err); err != nil {
			return 0, err
		}
	}
}

// Close releases the connection.
func (r *s3Stream) Close() error {
	r.closed = true
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// s3ReaderAt reads ranges of an object, each with a ranged GET on the
// listed ETag, resuming a cut body like s3Stream.
type s3ReaderAt struct {
	ctx context.Context
	obj *s3Object
}

// ReadAt reads len(p) bytes at off, or fewer and io.EOF at the end.
func (r *s3ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("s3: negative offset")
	}
	if off >= r.obj.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.obj.size)
	want := int(end - off)
	got, failures := 0, 0
	for got < want {
		body, err := r.obj.get(r.ctx, off+int64(got), end)
		if err == nil {
			var n int
			n, err = io.ReadFull(body, p[got:want])
			body.Close()
			got += n
			if n > 0 {
				failures = 0
			}
			if err == nil {
				break
			}
		}
		if permanent(r.ctx, err) {
			return got, err
		}
		failures++
		if failures > readRetries {
			return got, fmt.Errorf("s3: read %s at byte %d: giving up after %d attempts: %w", r.obj.url, off+int64(got), failures, err)
		}
		if err := wait(r.ctx, failures); err != nil {
			return got, fmt.Errorf("s3: read %s: %w", r.obj.url, err)
		}
	}
	if want < len(p) {
		return got, io.EOF
	}
	return got, nil
}

// Close does nothing: every range is its own request.
func (r *s3ReaderAt) Close() error { return nil }
