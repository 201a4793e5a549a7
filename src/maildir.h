/*
 * Maildir inside libp11mail: the public calls are in p11mail.h; these
 * helpers serve the outbox queue and the fetcher.
 */
#ifndef P11MAIL_MAILDIR_H
#define P11MAIL_MAILDIR_H

#include <stddef.h>

#include "p11mail.h"

/*
 * Creates dir and its tmp, new and cur subdirectories (0700) when missing.
 * Returns P11MAIL_ERR_IO, logged with the path, when one cannot be made.
 */
enum p11mail_status maildir_create(const char *dir);

/*
 * Writes the parts of a message one after the other into tmp/, flushes
 * them to disk and moves the file into new/ under a unique name.  Sets *id
 * (free()) on success; on failure nothing is left in new/ or tmp/.
 */
enum p11mail_status maildir_deliver_parts(const char *dir,
                                          const unsigned char *const *parts,
                                          const size_t *lens, size_t count,
                                          char **id);

/* Reads a whole file of at most max bytes into a new buffer (free()). */
enum p11mail_status maildir_read_file(const char *path, size_t max,
                                      unsigned char **out, size_t *out_len);

/*
 * Takes an exclusive lock on dir/name (created 0600; dir is made a
 * Maildir first), waiting for another process that holds it.  Returns the
 * descriptor to pass to maildir_unlock, or -1 (logged).
 */
int maildir_lock(const char *dir, const char *name);

/* Releases a lock from maildir_lock; accepts -1. */
void maildir_unlock(int fd);

#endif /* P11MAIL_MAILDIR_H */
