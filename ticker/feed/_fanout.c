/* ticker._fanout: one broadcast frame written to many sockets with the GIL released once.
 *
 * The pure-Python loop in ticker/fanout.py releases and re-takes the GIL around every
 * os.write; with writer threads on several cores that turns into a hand-off of the lock
 * per frame, which costs about as much as the send itself. This does the same loop in C:
 * one release per share, so shares written by different threads really run in parallel.
 * Optional: without a compiler the package installs and ticker uses the Python loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    Py_ssize_t index;
    Py_ssize_t sent; /* bytes taken by the kernel, or -1 when the socket failed */
} Short;

static PyObject *
write_all(PyObject *module, PyObject *args)
{
    Py_buffer frame, fds;
    if (!PyArg_ParseTuple(args, "y*y*:write_all", &frame, &fds))
        return NULL;
    PyObject *result = NULL;
    Short *shorts = NULL;
    if (fds.len % sizeof(int) != 0) {
        PyErr_SetString(PyExc_ValueError, "fds must be a buffer of C ints (array('i'))");
        goto done;
    }
    Py_ssize_t count = fds.len / (Py_ssize_t)sizeof(int);
    shorts = PyMem_RawMalloc(sizeof(Short) * (size_t)(count ? count : 1));
    if (shorts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const int *fd = (const int *)fds.buf;
    const char *data = (const char *)frame.buf;
    size_t size = (size_t)frame.len;
    Py_ssize_t nshort = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        ssize_t sent;
        do {
            /* MSG_NOSIGNAL: a peer that went away is an error to report, not a signal. */
            sent = send(fd[i], data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (sent < 0 && errno == EINTR);
        if (sent == (ssize_t)size)
            continue;
        if (sent < 0)
            sent = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        shorts[nshort].index = i;
        shorts[nshort].sent = sent;
        nshort++;
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(nshort);
    if (result == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < nshort; k++) {
        PyObject *pair = Py_BuildValue("(nn)", shorts[k].index, shorts[k].sent);
        if (pair == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, k, pair);
    }
done:
    PyMem_RawFree(shorts);
    PyBuffer_Release(&frame);
    PyBuffer_Release(&fds);
    return result;
}

static PyMethodDef methods[] = {
    {"write_all", write_all, METH_VARARGS,
     "write_all(frame, fds) -> [(index, sent)]: send frame to every socket in fds "
     "(array('i')); lists those not sent whole (sent 0: would block, -1: failed)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ticker._fanout", NULL, 0, methods,
};

PyMODINIT_FUNC
PyInit__fanout(void)
{
    return PyModule_Create(&module);
}
