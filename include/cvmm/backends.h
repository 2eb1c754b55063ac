/*
 * vhost-user back-end modes of the cvmm binary (`cvmm --block-backend OPTS`
 * and the like). Each takes its option string, runs until SIGINT/SIGTERM,
 * and returns the process exit status (0 after a clean stop).
 */
#ifndef CVMM_BACKENDS_H
#define CVMM_BACKENDS_H

/* "path=IMG,socket=SOCK[,num_queues=N][,queue_size=N][,readonly=on]
 *  [,direct=on][,client=on][,serial=STR]" */
int blk_backend_main(const char *opts);
/* "tap=NAME,socket=SOCK[,ip=A,mask=M][,mac=MAC][,host_mac=MAC][,mtu=N]
 *  [,num_queues=N][,queue_size=N][,client=on]" */
int net_backend_main(const char *opts);
/* "cid=N,socket=SOCK,uds_path=PATH" */
int vsock_backend_main(const char *opts);

#endif
