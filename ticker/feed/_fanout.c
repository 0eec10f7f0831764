/* ticker._fanout: one broadcast frame written to many sockets with the GIL released once.
 *
 * The pure-Python loop in ticker/fanout.py releases and re-takes the GIL around every
 * os.write; with writer threads on several cores that turns into a hand-off of the lock
 * per frame, which costs about as much as the send itself. This does the same loop in C:
 * one release per share, so shares written by different threads really run in parallel.
 * write_shared lets the threads share one array instead of splitting it in advance: the
 * cost of a loopback send varies by tens of per cent from moment to moment, so fixed shares
 * finished up to 15 ms apart at 10,000 sockets.
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

/* Send frame to fds[i] for every i claimed from *cursor, chunk indices at a time (an
 * atomic add, so several threads can share one array and each takes the next chunk when it
 * is done with its last: they finish within a chunk of each other whatever each send costs).
 * Returns the [(index, sent)] of those not sent whole, or NULL with an exception set. */
static PyObject *
send_claimed(Py_buffer *frame, Py_buffer *fds, long long *cursor, Py_ssize_t chunk)
{
    if (fds->len % sizeof(int) != 0) {
        PyErr_SetString(PyExc_ValueError, "fds must be a buffer of C ints (array('i'))");
        return NULL;
    }
    Py_ssize_t count = fds->len / (Py_ssize_t)sizeof(int);
    Short *shorts = PyMem_RawMalloc(sizeof(Short) * (size_t)(count ? count : 1));
    if (shorts == NULL)
        return PyErr_NoMemory();
    const int *fd = (const int *)fds->buf;
    const char *data = (const char *)frame->buf;
    size_t size = (size_t)frame->len;
    Py_ssize_t nshort = 0;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        long long start = __atomic_fetch_add(cursor, (long long)chunk, __ATOMIC_RELAXED);
        if (start >= count)
            break;
        Py_ssize_t stop = start + chunk < count ? (Py_ssize_t)start + chunk : count;
        for (Py_ssize_t i = (Py_ssize_t)start; i < stop; i++) {
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
    }
    Py_END_ALLOW_THREADS
    PyObject *result = PyList_New(nshort);
    for (Py_ssize_t k = 0; result != NULL && k < nshort; k++) {
        PyObject *pair = Py_BuildValue("(nn)", shorts[k].index, shorts[k].sent);
        if (pair == NULL)
            Py_CLEAR(result);
        else
            PyList_SET_ITEM(result, k, pair);
    }
    PyMem_RawFree(shorts);
    return result;
}

static PyObject *
write_all(PyObject *module, PyObject *args)
{
    Py_buffer frame, fds;
    if (!PyArg_ParseTuple(args, "y*y*:write_all", &frame, &fds))
        return NULL;
    long long cursor = 0;
    Py_ssize_t count = fds.len / (Py_ssize_t)sizeof(int);
    PyObject *result = send_claimed(&frame, &fds, &cursor, count ? count : 1);
    PyBuffer_Release(&frame);
    PyBuffer_Release(&fds);
    return result;
}

static PyObject *
write_shared(PyObject *module, PyObject *args)
{
    Py_buffer frame, fds, cursor;
    Py_ssize_t chunk;
    if (!PyArg_ParseTuple(args, "y*y*w*n:write_shared", &frame, &fds, &cursor, &chunk))
        return NULL;
    PyObject *result = NULL;
    if (cursor.len != sizeof(long long) || chunk < 1)
        PyErr_SetString(PyExc_ValueError,
                        "cursor must be array('q', [start]) and chunk at least 1");
    else
        result = send_claimed(&frame, &fds, (long long *)cursor.buf, chunk);
    PyBuffer_Release(&frame);
    PyBuffer_Release(&fds);
    PyBuffer_Release(&cursor);
    return result;
}

static PyMethodDef methods[] = {
    {"write_all", write_all, METH_VARARGS,
     "write_all(frame, fds) -> [(index, sent)]: send frame to every socket in fds "
     "(array('i')); lists those not sent whole (sent 0: would block, -1: failed)."},
    {"write_shared", write_shared, METH_VARARGS,
     "write_shared(frame, fds, cursor, chunk) -> [(index, sent)]: as write_all, for the "
     "indices claimed chunk at a time from cursor (array('q', [start]), shared by threads "
     "writing the same fds); lists those not sent whole."},
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
