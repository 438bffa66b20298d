package cli

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/server"
)

// LoginOptions are the options of `ergomake login` and `ergomake logout`.
type LoginOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	URL           string
	Token         string
	CAFingerprint string
}

// NewCmdLogin returns `ergomake login`.
func NewCmdLogin(f *Factory, runF func(*LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "login URL --token TOKEN [flags]",
		Short: "Log in to an ergomake server",
		Long: `Log in to an ergomake server (installed by "ergomake install --server") with the token your admin
created for you ("ergomake server token create"). The server must be reached over HTTPS.

Its certificate is trusted when this machine's roots trust it, or when it was signed by the CA
whose fingerprint you pass with --ca-fingerprint (printed by "ergomake install --server", as
"kubeadm join" pins the cluster's CA). Without the flag, on a terminal, you are shown the CA's
fingerprint and asked whether to trust it: compare it with the one your admin gave you.

The server is asked who the token belongs to before anything is saved. The URL, the token and the
trusted CA are stored, readable only by you, in the config directory
($XDG_CONFIG_HOME/ergomake/login.json, default ~/.config/ergomake/login.json).`,
		Example: `  ergomake login https://10.0.0.5:31443 --token ergomake_... --ca-fingerprint sha256:5f1c...
  pass show ergomake | ergomake login https://ergomake.example.com --token -`,
		Args: wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.URL = args[0]
			if opts.Token == "" {
				return FlagErrorf("--token is required (the token your admin created for you; - reads it from stdin)")
			}
			if opts.CAFingerprint != "" {
				fp, err := server.NormalizeFingerprint(opts.CAFingerprint)
				if err != nil {
					return FlagErrorf("--ca-fingerprint: %v", err)
				}
				opts.CAFingerprint = fp
			}
			if runF != nil {
				return runF(opts)
			}
			return loginRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Token, "token", "", `your token ("-": read it from stdin)`)
	cmd.Flags().StringVar(&opts.CAFingerprint, "ca-fingerprint", "", "trust the server's CA with this SHA-256 fingerprint (sha256:HEX, as ergomake install --server prints it)")
	return cmd
}

// NewCmdLogout returns `ergomake logout`.
func NewCmdLogout(f *Factory, runF func(*LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{IO: f.IOStreams, Factory: f}
	return &cobra.Command{
		Use:   "logout",
		Short: "Log out of the ergomake server",
		Long:  `Forget the ergomake server's URL, token and CA that "ergomake login" stored. The token stays valid until your admin revokes it.`,
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return logoutRun(opts)
		},
	}
}

// credentialsPath is where login stores the credentials: beside the default config file.
func credentialsPath(f *Factory) (string, error) {
	p := config.DefaultPath(f.Environ())
	if p == "" {
		return "", errors.New("cannot find the config directory: set HOME or XDG_CONFIG_HOME")
	}
	return filepath.Join(filepath.Dir(p), server.CredentialsFile), nil
}

func loginRun(opts *LoginOptions) error {
	path, err := credentialsPath(opts.Factory)
	if err != nil {
		return err
	}
	u, err := server.NormalizeURL(opts.URL)
	if err != nil {
		return FlagErrorf("%v", err)
	}
	token := opts.Token
	if token == "-" {
		line, err := bufio.NewReader(opts.IO.In).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("reading the token from stdin: %w", err)
		}
		token = strings.TrimSpace(line)
	}
	if token == "" {
		return errors.New("the token is empty")
	}

	chain, systemErr, err := server.Probe(opts.Context, u)
	if err != nil {
		return err
	}
	creds := &server.Credentials{URL: u.String(), Token: token}
	ca, err := opts.trust(chain, systemErr, u.Host)
	if err != nil {
		return err
	}
	if ca != nil {
		if err := server.VerifyPinned(chain, ca, opts.Factory.Now()); err != nil {
			return err
		}
		creds.CA = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
		creds.CAFingerprint = server.Fingerprint(ca)
	}

	client, err := server.NewClient(creds)
	if err != nil {
		return err
	}
	who, err := client.WhoAmI(opts.Context)
	if err != nil {
		return fmt.Errorf("login failed, nothing saved: %w", err)
	}
	creds.User = who.User
	if err := server.SaveCredentials(path, creds); err != nil {
		return fmt.Errorf("saving the credentials: %w", err)
	}
	exp := ""
	if who.Expires != nil {
		exp = fmt.Sprintf(" until %s", who.Expires.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(opts.IO.Out, "logged in to %s as %s%s\n", creds.URL, who.User, exp)
	return nil
}

// trust decides which CA to pin: the one with --ca-fingerprint, none when the system's roots
// trust the server, or the top of the chain when the user says so on a terminal.
func (opts *LoginOptions) trust(chain []*x509.Certificate, systemErr error, host string) (*x509.Certificate, error) {
	if opts.CAFingerprint != "" {
		var seen []string
		for _, c := range chain {
			if server.Fingerprint(c) == opts.CAFingerprint {
				return c, nil
			}
			seen = append(seen, server.Fingerprint(c))
		}
		return nil, fmt.Errorf("the server at %s is not the one you expect: no certificate it presents has the fingerprint %s (it presents %s); nothing saved",
			host, opts.CAFingerprint, strings.Join(seen, ", "))
	}
	if systemErr == nil {
		return nil, nil
	}
	top := chain[len(chain)-1]
	if !opts.IO.IsStdinTTY() || !opts.IO.IsStderrTTY() {
		return nil, fmt.Errorf("the server's certificate is not trusted by this machine (%v): pass --ca-fingerprint with the fingerprint \"ergomake install --server\" printed (its CA's is %s: check it with your admin)", systemErr, server.Fingerprint(top))
	}
	fmt.Fprintf(opts.IO.ErrOut, "The server's certificate is not trusted by this machine.\n  CA:          %s\n  fingerprint: %s\nCompare the fingerprint with the one your admin gave you. Trust this CA for %s? [y/N] ",
		top.Subject.String(), server.Fingerprint(top), host)
	answer, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return top, nil
	}
	return nil, errors.New("not trusted: nothing saved")
}

func logoutRun(opts *LoginOptions) error {
	path, err := credentialsPath(opts.Factory)
	if err != nil {
		return err
	}
	creds, err := server.LoadCredentials(path)
	if errors.Is(err, server.ErrNotLoggedIn) {
		fmt.Fprintln(opts.IO.ErrOut, "not logged in")
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if creds != nil && creds.URL != "" {
		fmt.Fprintf(opts.IO.Out, "logged out of %s\n", creds.URL)
	} else {
		fmt.Fprintln(opts.IO.Out, "logged out")
	}
	return nil
}
