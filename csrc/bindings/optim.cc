// _core.sgd_step, adam_step, adagrad_step, rmsprop_step and sum_squares: pointers in, GIL
// released, kernel called. Each step updates p and its state arrays in place.
#include "seqkern/optim.h"

#include "arrays.h"

namespace seqkern::bind {

namespace {

template <typename T>
void sgd(Arr<T>& p, const Arr<T>& g, OptArr<T>& buf, double lr, double momentum,
         double dampening, bool nesterov, double wd, bool first) {
  T *pp = p.mutable_data(), *pb = mut(buf);
  const T* pg = g.data();
  py::gil_scoped_release nogil;
  sgd_step<T>(p.size(), pp, pg, pb, T(lr), T(momentum), T(dampening), nesterov, T(wd), first);
}

template <typename T>
void adam(Arr<T>& p, const Arr<T>& g, Arr<T>& m, Arr<T>& v, double lr, double beta1, double beta2,
          double eps, double wd, bool decoupled, int64_t step) {
  T *pp = p.mutable_data(), *pm = m.mutable_data(), *pv = v.mutable_data();
  const T* pg = g.data();
  py::gil_scoped_release nogil;
  adam_step<T>(p.size(), pp, pg, pm, pv, T(lr), T(beta1), T(beta2), T(eps), T(wd), decoupled,
               step);
}

template <typename T>
void adagrad(Arr<T>& p, const Arr<T>& g, Arr<T>& sum, double clr, double eps, double wd) {
  T *pp = p.mutable_data(), *ps = sum.mutable_data();
  const T* pg = g.data();
  py::gil_scoped_release nogil;
  adagrad_step<T>(p.size(), pp, pg, ps, T(clr), T(eps), T(wd));
}

template <typename T>
void rmsprop(Arr<T>& p, const Arr<T>& g, Arr<T>& sq, OptArr<T>& buf, double lr, double alpha,
             double eps, double momentum, double wd) {
  T *pp = p.mutable_data(), *ps = sq.mutable_data(), *pb = mut(buf);
  const T* pg = g.data();
  py::gil_scoped_release nogil;
  rmsprop_step<T>(p.size(), pp, pg, ps, pb, T(lr), T(alpha), T(eps), T(momentum), T(wd));
}

template <typename T>
double squares(const Arr<T>& a) {
  const T* pa = a.data();
  py::gil_scoped_release nogil;
  return sum_squares<T>(a.size(), pa);
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", &sgd<float>);
  m.def("sgd_step", &sgd<double>);
  m.def("adam_step", &adam<float>);
  m.def("adam_step", &adam<double>);
  m.def("adagrad_step", &adagrad<float>);
  m.def("adagrad_step", &adagrad<double>);
  m.def("rmsprop_step", &rmsprop<float>);
  m.def("rmsprop_step", &rmsprop<double>);
  m.def("sum_squares", &squares<float>);
  m.def("sum_squares", &squares<double>);
}

}  // namespace seqkern::bind
