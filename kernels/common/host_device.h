// KAON_HD marks a function that nvcc compiles for both the host and the
// device, and that g++ compiles as plain host code: the device kernels and
// their CPU twins call the same source, so they cannot drift apart.
#pragma once

#if defined(__CUDACC__)
#define KAON_HD __host__ __device__
#else
#define KAON_HD
#endif
