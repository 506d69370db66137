/* eig.h — the PCA's eigensolver, internal to the library (tests reach it to
 * check the iterative path against LAPACK's).
 * Includes: dc/core.h. */
#ifndef DC_CLUSTER_EIG_H
#define DC_CLUSTER_EIG_H

#include "dc/core.h"

/* The k largest eigenpairs of the symmetric matrix a (d x d, row-major, upper
 * triangle read; a may be overwritten): w[0..k) ascending, eigenvector r in
 * column r of z (d, k). iterative: subspace iteration first (LAPACK's dsyevr
 * if it does not converge), else dsyevr. */
dc_status dc_eig_top(double *a, int d, int k, double *w, double *z, int iterative);

/* Subspace iteration alone: 1 when it converged (w, z written), 0 when it
 * did not in its pass limit or ran out of memory. a is not modified. */
int dc_eig_top_iterative(const double *a, int d, int k, double *w, double *z);

#endif
