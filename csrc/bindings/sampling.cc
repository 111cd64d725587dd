// _core.cdf_search: the pointer in, kernel called (microseconds: the GIL stays held).
#include "seqkern/sampling.h"

#include "arrays.h"

namespace seqkern::bind {

void bind_sampling(py::module_& m) {
  m.def("cdf_search",
        [](const Arr<double>& p, double u) { return cdf_search(p.data(), p.size(), u); });
}

}  // namespace seqkern::bind
