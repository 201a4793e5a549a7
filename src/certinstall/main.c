/*
 * p11mail-certinstall: puts S/MIME identities on tokens and records them,
 * with the trust anchors, in this workstation's store.
 */
#include "config.h"

#include "certinstall/ci.h"

static const struct tool_command commands[] = {
        {"keygen", "generate a key pair on the token and print a CSR",
         ci_cmd_keygen},
        {"install", "put an issued certificate next to its key, record it",
         ci_cmd_install},
        {"import", "move a PKCS#12 file's key and certificate to the token",
         ci_cmd_import},
        {"register", "record an identity already on a token", ci_cmd_register},
        {"anchor", "add, remove or list trust anchors", ci_cmd_anchor},
        {"list", "list the identities of this workstation", ci_cmd_list},
        {"remove", "forget an identity (the key stays on the token)",
         ci_cmd_remove},
        {"export", "print an own certificate as PEM, DNS CERT or LDIF",
         ci_cmd_export},
};

int main(int argc, char **argv)
{
	return tool_main("p11mail-certinstall",
	                 "Installs S/MIME identities whose keys stay on "
	                 "the token.",
	                 commands, sizeof(commands) / sizeof(commands[0]), argc,
	                 argv);
}
