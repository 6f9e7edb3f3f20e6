/*
 * err.c — error codes, their text, and the optional detail struct.
 *
 * The table below is indexed by code; mcf_strerror() and mcf_err_name()
 * never return NULL so they can go straight into a printf.
 */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static const struct {
	const char *name;
	const char *text;
} err_table[MCF_ERR_COUNT] = {
	[MCF_OK]        = { "MCF_OK", "success" },
	[MCF_ENOMEM]    = { "MCF_ENOMEM", "out of memory" },
	[MCF_EINVAL]    = { "MCF_EINVAL", "invalid argument" },
	[MCF_ENOENT]    = { "MCF_ENOENT", "not found" },
	[MCF_EEXIST]    = { "MCF_EEXIST", "already exists" },
	[MCF_ECONFLICT] = { "MCF_ECONFLICT", "conflict" },
	[MCF_EGONE]     = { "MCF_EGONE", "resource version expired" },
	[MCF_ETIMEDOUT] = { "MCF_ETIMEDOUT", "timed out" },
	[MCF_EIO]       = { "MCF_EIO", "input/output error" },
	[MCF_EPROTO]    = { "MCF_EPROTO", "protocol error" },
	[MCF_ERANGE]    = { "MCF_ERANGE", "value out of range" },
	[MCF_EBUSY]     = { "MCF_EBUSY", "busy" },
	[MCF_ECLOSED]   = { "MCF_ECLOSED", "closed" },
	[MCF_EPERM]     = { "MCF_EPERM", "permission denied" },
	[MCF_EUNAVAIL]  = { "MCF_EUNAVAIL", "service unavailable" },
	[MCF_ETOOBIG]   = { "MCF_ETOOBIG", "too big" },
	[MCF_EAGAIN]    = { "MCF_EAGAIN", "try again later" },
	[MCF_ECANCELED] = { "MCF_ECANCELED", "canceled" },
	[MCF_EUNSUPP]   = { "MCF_EUNSUPP", "not supported" },
	[MCF_EINTERNAL] = { "MCF_EINTERNAL", "internal error" },
	[MCF_EAUTH]     = { "MCF_EAUTH", "authentication failed" },
	[MCF_ESYS]      = { "MCF_ESYS", "system call failed" },
};

const char *
mcf_strerror(int code)
{
	if (code < 0 || code >= MCF_ERR_COUNT)
		return "unknown error";
	return err_table[code].text;
}

const char *
mcf_err_name(int code)
{
	if (code < 0 || code >= MCF_ERR_COUNT)
		return "MCF_E?";
	return err_table[code].name;
}

int
mcf_errinfo_set(mcf_errinfo *ei, int code, const char *fmt, ...)
{
	if (ei != NULL) {
		va_list ap;
		ei->code = code;
		va_start(ap, fmt);
		vsnprintf(ei->msg, sizeof(ei->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

void
mcf_errinfo_clear(mcf_errinfo *ei)
{
	if (ei != NULL) {
		ei->code   = MCF_OK;
		ei->msg[0] = '\0';
	}
}

int
mcf_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return MCF_OK;
	case ENOMEM:
		return MCF_ENOMEM;
	case EINVAL:
		return MCF_EINVAL;
	case ENOENT:
		return MCF_ENOENT;
	case EEXIST:
		return MCF_EEXIST;
	case ETIMEDOUT:
		return MCF_ETIMEDOUT;
	case EACCES:
	case EPERM:
		return MCF_EPERM;
	case EAGAIN:
		return MCF_EAGAIN;
	case EBUSY:
		return MCF_EBUSY;
	case ERANGE:
		return MCF_ERANGE;
	case ECONNREFUSED:
		return MCF_EUNAVAIL;
	case ECANCELED:
		return MCF_ECANCELED;
	case EIO:
	case EPIPE:
	case ECONNRESET:
		return MCF_EIO;
	default:
		return MCF_ESYS;
	}
}
