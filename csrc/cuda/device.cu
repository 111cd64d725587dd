#include <string>

#include "check.cuh"
#include "seqkern/cuda_recurrent.h"

namespace seqkern::cuda {

int device_count(std::string* why_none) {
  int n = 0;
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    if (why_none != nullptr) *why_none = cudaGetErrorString(status);
    cudaGetLastError();  // no driver or no device: not an error for the caller to trip on later
    return 0;
  }
  return n;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

}  // namespace seqkern::cuda
