package awskms_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// fakeKMS is a hand-written API: it fails Encrypt/Decrypt with err, answers
// DescribeKey with state (or describeErr), and records what it was sent.
type fakeKMS struct {
	err         error
	state       types.KeyState
	describeErr error
	describes   int
	described   string
	encrypt     *kms.EncryptInput
	decrypt     *kms.DecryptInput
}

func (f *fakeKMS) Encrypt(_ context.Context, in *kms.EncryptInput, _ ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	f.encrypt = in
	if f.err != nil {
		return nil, f.err
	}
	return &kms.EncryptOutput{CiphertextBlob: append([]byte("blob:"), in.Plaintext...)}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	f.decrypt = in
	if f.err != nil {
		return nil, f.err
	}
	return &kms.DecryptOutput{Plaintext: in.CiphertextBlob[len("blob:"):]}, nil
}

func (f *fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	f.describes++
	f.described = aws.ToString(in.KeyId)
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	return &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{KeyId: in.KeyId, KeyState: f.state}}, nil
}

const keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// TestClassifyEveryKMSError covers every exception type of the KMS SDK,
// the generic codes KMS and STS answer with, and failures that never reach
// KMS. Terminal ones seal at once; everything else is transient.
func TestClassifyEveryKMSError(t *testing.T) {
	cases := []struct {
		err      error
		terminal bool
		reason   string
		// code is the expected KMSError.Code; "" means the API error's own
		// code.
		code string
	}{
		{&types.AlreadyExistsException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CloudHsmClusterInUseException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CloudHsmClusterInvalidConfigurationException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CloudHsmClusterNotActiveException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CloudHsmClusterNotFoundException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CloudHsmClusterNotRelatedException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.ConflictException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CustomKeyStoreHasCMKsException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CustomKeyStoreInvalidStateException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CustomKeyStoreNameInUseException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.CustomKeyStoreNotFoundException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.DependencyTimeoutException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.DisabledException{Message: aws.String("m")}, true, keyseal.ReasonKeyDisabled, ""},
		{&types.DryRunOperationException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.ExpiredImportTokenException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.IncorrectKeyException{Message: aws.String("m")}, true, keyseal.ReasonInvalidBlob, ""},
		{&types.IncorrectKeyMaterialException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.IncorrectTrustAnchorException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.InvalidAliasNameException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.InvalidArnException{Message: aws.String("m")}, true, keyseal.ReasonKeyNotFound, ""},
		{&types.InvalidCiphertextException{Message: aws.String("m")}, true, keyseal.ReasonInvalidBlob, ""},
		{&types.InvalidGrantIdException{Message: aws.String("m")}, true, keyseal.ReasonAccessDenied, ""},
		{&types.InvalidGrantTokenException{Message: aws.String("m")}, true, keyseal.ReasonAccessDenied, ""},
		{&types.InvalidImportTokenException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.InvalidKeyUsageException{Message: aws.String("m")}, true, keyseal.ReasonAccessDenied, ""},
		{&types.InvalidMarkerException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.KeyUnavailableException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.KMSInternalException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.KMSInvalidMacException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.KMSInvalidSignatureException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.LimitExceededException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.MalformedPolicyDocumentException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.NotFoundException{Message: aws.String("m")}, true, keyseal.ReasonKeyNotFound, ""},
		{&types.TagException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.UnsupportedOperationException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksKeyAlreadyInUseException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksKeyInvalidConfigurationException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksKeyNotFoundException{Message: aws.String("m")}, true, keyseal.ReasonKeyNotFound, ""},
		{&types.XksProxyIncorrectAuthenticationCredentialException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksProxyInvalidConfigurationException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksProxyInvalidResponseException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksProxyUriEndpointInUseException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksProxyUriInUseException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksProxyUriUnreachableException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksProxyVpcEndpointServiceInUseException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksProxyVpcEndpointServiceInvalidConfigurationException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		{&types.XksProxyVpcEndpointServiceNotFoundException{Message: aws.String("m")}, false, keyseal.ReasonUnreachable, ""},
		// Codes with no SDK type: KMS's AccessDenied, throttling, and the
		// STS/SigV4 failures of an assumed customer role.
		{&smithy.GenericAPIError{Code: "AccessDeniedException"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "AccessDenied"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "ExpiredToken"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "ExpiredTokenException"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "InvalidClientTokenId"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "UnrecognizedClientException"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "InvalidSignatureException"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "MissingAuthenticationToken"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "MissingAuthenticationTokenException"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "IncompleteSignature"}, true, keyseal.ReasonAccessDenied, ""},
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, false, keyseal.ReasonUnreachable, ""},
		{&smithy.GenericAPIError{Code: "ServiceUnavailableException"}, false, keyseal.ReasonUnreachable, ""},
		{&smithy.GenericAPIError{Code: "SomethingNew"}, false, keyseal.ReasonUnreachable, ""},
		// A 5xx without a KMS code, as a load balancer in front answers.
		{httpError(503), false, keyseal.ReasonUnreachable, "HTTP503"},
		// Never reached KMS.
		{context.DeadlineExceeded, false, keyseal.ReasonUnreachable, "Timeout"},
		{context.Canceled, false, keyseal.ReasonUnreachable, "Canceled"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false, keyseal.ReasonUnreachable, "NetworkError"},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, false, keyseal.ReasonUnreachable, "NetworkError"},
		{&smithyhttp.RequestSendError{Err: errors.New("dial tcp: lookup kms.example: no such host")}, false, keyseal.ReasonUnreachable, "NetworkError"},
		{io.EOF, false, keyseal.ReasonUnreachable, "NetworkError"},
		{io.ErrUnexpectedEOF, false, keyseal.ReasonUnreachable, "NetworkError"},
		{syscall.ECONNRESET, false, keyseal.ReasonUnreachable, "NetworkError"},
		// Anything unforeseen: transient, so a blip never seals.
		{errors.New("failed to refresh cached credentials, no EC2 IMDS role found"), false, keyseal.ReasonUnreachable, "Unclassified"},
	}
	for _, c := range cases {
		name := c.err.Error()
		want := c.code
		var api smithy.APIError
		if errors.As(c.err, &api) && want == "" {
			name, want = api.ErrorCode(), api.ErrorCode()
		}
		t.Run(name, func(t *testing.T) {
			// Wrapped the way the SDK wraps operation errors.
			err := &smithy.OperationError{ServiceID: "KMS", OperationName: "Decrypt", Err: c.err}
			f := &fakeKMS{}
			got := awskms.Classify(context.Background(), f, keyARN, err)
			if got.Terminal != c.terminal || got.Reason != c.reason || got.Code != want {
				t.Fatalf("got terminal=%v reason=%s code=%s, want terminal=%v reason=%s code=%s",
					got.Terminal, got.Reason, got.Code, c.terminal, c.reason, want)
			}
			if got.Err != err {
				t.Fatal("KMSError.Err is not the original error")
			}
			if f.describes != 0 {
				t.Fatal("DescribeKey called for an unambiguous error")
			}
		})
	}
}

// httpError is an answer the SDK could not read a KMS error code from, as
// its deserializer reports it.
func httpError(status int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: "UnknownError", Message: "<html>Service Unavailable</html>"},
	}}
}

// TestClassifyKeepsClassifiedErrors: a provider error passed through a
// caller's wrapping keeps its classification, and nil stays nil.
func TestClassifyKeepsClassifiedErrors(t *testing.T) {
	ke := &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonKeyDisabled, Code: "DisabledException"}
	if got := awskms.Classify(context.Background(), nil, keyARN, errors.Join(errors.New("verify"), ke)); got != ke {
		t.Fatalf("got %v, want the KMSError itself", got)
	}
	if got := awskms.Classify(context.Background(), nil, keyARN, nil); got != nil {
		t.Fatalf("nil error classified as %v", got)
	}
	// Without a client KMSInvalidStateException cannot be resolved: transient.
	got := awskms.Classify(context.Background(), nil, keyARN, &types.KMSInvalidStateException{})
	if got.Terminal || got.Reason != keyseal.ReasonUnreachable {
		t.Fatalf("unresolved invalid state: %v", got)
	}
}

// TestInvalidStateIsResolvedWithDescribeKey: KMSInvalidStateException means
// pending deletion (terminal) or a disconnected key store (transient).
func TestInvalidStateIsResolvedWithDescribeKey(t *testing.T) {
	cases := []struct {
		state       types.KeyState
		describeErr error
		terminal    bool
		reason      string
	}{
		{state: types.KeyStatePendingDeletion, terminal: true, reason: keyseal.ReasonPendingDeletion},
		{state: types.KeyStatePendingReplicaDeletion, terminal: true, reason: keyseal.ReasonPendingDeletion},
		{state: types.KeyStateDisabled, terminal: true, reason: keyseal.ReasonKeyDisabled},
		{state: types.KeyStateUnavailable, reason: keyseal.ReasonUnreachable},
		{state: types.KeyStateCreating, reason: keyseal.ReasonUnreachable},
		{state: types.KeyStateUpdating, reason: keyseal.ReasonUnreachable},
		{state: types.KeyStatePendingImport, terminal: true, reason: keyseal.ReasonKeyDisabled},
		{state: types.KeyStateEnabled, reason: keyseal.ReasonUnreachable},
		{state: "StateAddedLater", reason: keyseal.ReasonUnreachable},
		// DescribeKey's own failure is the answer.
		{describeErr: &smithy.GenericAPIError{Code: "AccessDeniedException"}, terminal: true, reason: keyseal.ReasonAccessDenied},
		{describeErr: &types.NotFoundException{}, terminal: true, reason: keyseal.ReasonKeyNotFound},
		{describeErr: context.DeadlineExceeded, reason: keyseal.ReasonUnreachable},
		// Another invalid-state answer does not loop.
		{describeErr: &types.KMSInvalidStateException{}, reason: keyseal.ReasonUnreachable},
	}
	for _, c := range cases {
		name := string(c.state)
		if c.describeErr != nil {
			name = "describe fails: " + c.describeErr.Error()
		}
		t.Run(name, func(t *testing.T) {
			f := &fakeKMS{err: &types.KMSInvalidStateException{Message: aws.String("key state")}, state: c.state, describeErr: c.describeErr}
			_, err := awskms.New(f).Unwrap(context.Background(), keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: keyARN}, keyseal.Wrapped{Blob: []byte("blob:x")}, nil)
			var ke *keyseal.KMSError
			if !errors.As(err, &ke) {
				t.Fatalf("not a KMSError: %v", err)
			}
			if ke.Terminal != c.terminal || ke.Reason != c.reason {
				t.Fatalf("got terminal=%v reason=%s, want terminal=%v reason=%s", ke.Terminal, ke.Reason, c.terminal, c.reason)
			}
			if f.describes != 1 || f.described != keyARN {
				t.Fatalf("%d DescribeKey calls (last for %q), want 1 for the key", f.describes, f.described)
			}
			if c.describeErr == nil && ke.Code != "KMSInvalidStateException" {
				t.Fatalf("code %q, want the AWS code KMSInvalidStateException", ke.Code)
			}
			if !errors.Is(err, f.err) || (c.describeErr != nil && !errors.Is(err, c.describeErr)) {
				t.Fatalf("%v does not wrap the errors it was classified from", err)
			}
			if c.state != "" && !strings.Contains(err.Error(), string(c.state)) {
				t.Fatalf("%v does not name the key state", err)
			}
		})
	}
}

// TestWrapBindsContextAndUnwrapPinsKey checks what keyseal sends KMS.
func TestWrapBindsContextAndUnwrapPinsKey(t *testing.T) {
	f := &fakeKMS{}
	p := awskms.New(f)
	key := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: keyARN}
	ec := map[string]string{"keyseal:tenant": "acme"}
	blob, err := p.Wrap(context.Background(), key, []byte("tmk"), ec)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(f.encrypt.KeyId) != keyARN || f.encrypt.EncryptionContext["keyseal:tenant"] != "acme" {
		t.Fatalf("encrypt input: %+v", f.encrypt)
	}
	if _, err := p.Unwrap(context.Background(), key, blob, ec); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(f.decrypt.KeyId) != keyARN || f.decrypt.EncryptionContext["keyseal:tenant"] != "acme" {
		t.Fatalf("decrypt input is not pinned to the key and context: %+v", f.decrypt)
	}
}

// TestAssumeRoleRouting: keys naming a role go through that role's client.
func TestAssumeRoleRouting(t *testing.T) {
	base, customer := &fakeKMS{}, &fakeKMS{}
	var asked [2]string
	p := awskms.New(base, awskms.WithAssumeRole(func(role, ext string) awskms.API {
		asked = [2]string{role, ext}
		return customer
	}))
	ctx := context.Background()
	if _, err := p.Wrap(ctx, keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: keyARN}, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if base.encrypt == nil || customer.encrypt != nil {
		t.Fatal("a key without a role must use the base client")
	}
	role := "arn:aws:iam::111122223333:role/keyseal"
	if _, err := p.Wrap(ctx, keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: keyARN, Access: map[string]string{awskms.AccessRoleARN: role, awskms.AccessExternalID: "ext-1"}}, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if customer.encrypt == nil || asked != [2]string{role, "ext-1"} {
		t.Fatalf("a key with a role must use that role's client (asked %v)", asked)
	}
}

// TestKeyState: the provider reports DescribeKey's KeyState for the key
// (in the key's region), and a failing describe as a classified error with
// the state Unknown, without describing again.
func TestKeyState(t *testing.T) {
	key := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: keyARN}
	for _, st := range []types.KeyState{types.KeyStateEnabled, types.KeyStateDisabled, types.KeyStatePendingDeletion} {
		f := &fakeKMS{state: st}
		got, err := awskms.New(f).KeyState(context.Background(), key)
		if err != nil || got != string(st) || f.describes != 1 || f.described != keyARN {
			t.Fatalf("state %s: got %q, %v after %d describes of %q", st, got, err, f.describes, f.described)
		}
	}
	f := &fakeKMS{describeErr: &smithy.GenericAPIError{Code: "AccessDeniedException"}}
	got, err := awskms.New(f).KeyState(context.Background(), key)
	var ke *keyseal.KMSError
	if got != keyseal.KeyStateUnknown || !errors.As(err, &ke) || !ke.Terminal || ke.Reason != keyseal.ReasonAccessDenied || f.describes != 1 {
		t.Fatalf("denied: %q, %v after %d describes", got, err, f.describes)
	}
}
