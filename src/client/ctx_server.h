/*
 * ctx_server.h - the server compute context: jobs in rxjobd, over HTTP on a Unix socket.
 */
#ifndef RX_CLIENT_CTX_SERVER_H
#define RX_CLIENT_CTX_SERVER_H

#include "client/job.h"
#include "rxjob.h"

/* The job ops of ctx when it is a server context; NULL for a context without jobs (local). */
const rx__job_ops *rx__server_job_ops(const rx_context *ctx);

#endif
