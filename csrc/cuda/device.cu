#include "check.cuh"
#include "seqkern/cuda_recurrent.h"

namespace seqkern::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error for the caller to trip on later
    return 0;
  }
  return n;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

}  // namespace seqkern::cuda
